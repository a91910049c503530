// The console: access (a key pasted once per browser session, or none in insecure mode) and the views.

import { ApiError, apiKey, call, setApiKey } from "./api.js";
import { renderDatasets } from "./datasets.js";
import { fill, h, notify } from "./dom.js";
import { renderJob, renderJobs } from "./jobs.js";
import { renderOperators } from "./operators.js";
import { renderUpload } from "./upload.js";

const main = document.getElementById("main");
const access = document.getElementById("access");
let current = null; // the AbortController of the view shown
let admitted = false; // whether the API let us in: a 401 after that means the key was revoked

/** What the API says of us: {needsKey, admin}. */
async function probe() {
  try {
    await call("/dlq?limit=1");
    return { needsKey: false, admin: true };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return { needsKey: true, admin: false, error };
    if (error.status === 403) return { needsKey: false, admin: false };
    throw error;
  }
}

function showAccess(state) {
  const operators = document.getElementById("nav-operators");
  operators.hidden = !state.admin;
  if (!apiKey()) {
    fill(access, state.needsKey ? "" : h("span", { class: "hint" }, "Open access: no key needed"));
    return;
  }
  const forget = h("button", { type: "button", class: "link" }, "Forget the key");
  forget.addEventListener("click", () => {
    setApiKey(null);
    start();
  });
  fill(access, h("span", {}, state.admin ? "Admin key" : "Key set (not admin)"), " ", forget);
}

function signIn(error) {
  admitted = false;
  current?.abort();
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const form = h(
    "form",
    { class: "sign-in" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { class: "hint", id: "api-key-help" },
      "Kept in this tab for this browser session only, and sent as an Authorization header. ",
      "Create one with: ingestro keys create NAME --scope read",
    ),
    h("button", { type: "submit", class: "primary" }, "Use this key"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    start();
  });
  fill(
    main,
    h("h1", {}, "This API needs a key"),
    error && apiKey() ? h("p", { class: "error-text", role: "alert" }, `The key was refused: ${error.message}`) : null,
    form,
  );
  if (error && apiKey()) setApiKey(null);
  fill(access);
  input.focus();
}

const VIEWS = [
  [/^#\/jobs\/([^/]+)$/, "jobs", (signal, id) => renderJob(main, signal, decodeURIComponent(id))],
  [/^#\/jobs$/, "jobs", (signal) => renderJobs(main, signal)],
  [/^#\/datasets$/, "datasets", (signal) => renderDatasets(main, signal)],
  [/^#\/operators$/, "operators", (signal) => renderOperators(main, signal)],
  [/^(#\/upload)?$/, "upload", (signal) => renderUpload(main, signal)],
];

function route() {
  current?.abort();
  current = new AbortController();
  const hash = location.hash === "#" ? "" : location.hash;
  const found = VIEWS.find(([pattern]) => pattern.test(hash));
  if (!found) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/upload" }, "Upload files")));
    return;
  }
  const [pattern, name, render] = found;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const signal = current.signal;
  Promise.resolve(render(signal, ...pattern.exec(hash).slice(1))).catch((error) => {
    if (!signal.aborted) notify(error.message, "error");
  });
  main.focus({ preventScroll: true });
}

let routing = false;
async function start() {
  let state;
  try {
    state = await probe();
  } catch (error) {
    fill(main, h("h1", {}, "The API cannot be reached"), h("p", { class: "error-text", role: "alert" }, error.message));
    return;
  }
  if (state.needsKey) {
    signIn(state.error);
    return;
  }
  admitted = true;
  showAccess(state);
  if (!routing) {
    window.addEventListener("hashchange", route);
    routing = true;
  }
  route();
}

window.addEventListener("ingestro:unauthorized", (event) => admitted && signIn(event.detail));
start();
