// The Datasets view: the declared datasets, and a new one drafted from a file, reviewed, then declared.

import { call, getJson, query } from "./api.js";
import { fill, h, notify, table } from "./dom.js";
import { formatOf } from "./headers.js";

/** The largest sample POST /datasets/infer takes: the file's start, cut at its last whole line. */
const SAMPLE_BYTES = 1024 * 1024;

export async function renderDatasets(main, signal) {
  const listing = h("div", { "aria-live": "polite" }, "Loading…");
  const fileInput = h("input", { id: "infer-file", type: "file", accept: ".csv,.tsv,.txt,.json,.ndjson,.jsonl" });
  const nameInput = h("input", {
    id: "infer-name",
    type: "text",
    pattern: "[a-z_][a-z0-9_]{0,62}",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "infer-name-hint",
  });
  const inferButton = h("button", { type: "button", class: "primary" }, "Draft a declaration");
  const draft = h("div", { class: "draft" });
  fill(
    main,
    h("h1", {}, "Datasets"),
    listing,
    h(
      "section",
      { "aria-labelledby": "new-dataset" },
      h("h2", { id: "new-dataset" }, "New dataset from a file"),
      h(
        "p",
        { class: "hint" },
        "The start of the file (up to 1 MiB) is sent to infer types, required fields and candidate keys. ",
        "Nothing is stored until you declare it.",
      ),
      h("div", { class: "field" }, h("label", { for: "infer-file" }, "File"), fileInput),
      h(
        "div",
        { class: "field" },
        h("label", { for: "infer-name" }, "Dataset name"),
        nameInput,
        h("p", { class: "hint", id: "infer-name-hint" }, "Lowercase letters, digits and _; also the table's name."),
      ),
      h("div", { class: "actions" }, inferButton),
      draft,
    ),
  );
  loadList(listing, signal);

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file && !nameInput.value) nameInput.value = suggestedName(file.name);
  });
  inferButton.addEventListener("click", async () => {
    const file = fileInput.files[0];
    if (!file) {
      notify("Choose a file first.", "error");
      fileInput.focus();
      return;
    }
    inferButton.disabled = true;
    fill(draft, h("p", { role: "status" }, "Inferring…"));
    try {
      const sample = await sampleOf(file);
      const params = { filename: file.name, name: nameInput.value.trim(), format: formatOf(file.name) || undefined };
      const response = await call(`/datasets/infer${query(params)}`, {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: sample,
        signal,
      });
      showDraft(draft, await response.json(), () => loadList(listing, signal), signal);
    } catch (error) {
      if (!signal.aborted) fill(draft, h("p", { class: "error-text", role: "alert" }, `No draft: ${error.message}`));
    } finally {
      inferButton.disabled = false;
    }
  });
}

async function loadList(listing, signal) {
  try {
    const datasets = (await getJson("/datasets", { signal })).items;
    const rows = datasets.map((dataset) => [
      h("strong", {}, dataset.name),
      String(dataset.version),
      dataset.fields.map((field) => `${field.name}${field.required ? "*" : ""}: ${field.type}`).join(", "),
      dataset.key.length ? dataset.key.join(", ") : "content hash",
    ]);
    fill(
      listing,
      table("Declared datasets (* required)", ["Name", "Version", "Fields", "Identity"], rows, { class: "datasets" }),
    );
  } catch (error) {
    if (!signal.aborted) fill(listing, h("p", { class: "error-text", role: "alert" }, error.message));
  }
}

function suggestedName(filename) {
  const stem = filename.split(".")[0].normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
  const name = stem.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 63);
  return /^[0-9]/.test(name) ? `_${name}`.slice(0, 63) : name || "new_dataset";
}

/** The file's first MiB, cut after its last whole line when the file is longer. */
async function sampleOf(file) {
  if (/\.gz$/i.test(file.name)) throw new Error("a compressed file cannot be sampled here: choose the uncompressed file");
  if (file.size <= SAMPLE_BYTES) return file;
  const head = new Uint8Array(await file.slice(0, SAMPLE_BYTES).arrayBuffer());
  const cut = head.lastIndexOf(0x0a);
  return new Blob([cut > 0 ? head.slice(0, cut + 1) : head]);
}

function showDraft(draft, result, declared, signal) {
  const editor = h("textarea", {
    id: "draft-toml",
    rows: Math.min(40, result.toml.split("\n").length + 2),
    spellcheck: "false",
    "aria-describedby": "draft-help",
  });
  editor.value = result.toml;
  const declare = h("button", { type: "button", class: "primary" }, `Declare ${result.name}`);
  const outcome = h("div", { class: "outcome", "aria-live": "polite" });
  const fields = result.declaration.fields.map((field) => [
    field.name,
    field.type + (field.formats?.length ? ` (${field.formats.join(", ")})` : ""),
    field.required ? "yes" : "no",
    field.aliases?.length ? field.aliases.join(", ") : "–",
  ]);
  fill(
    draft,
    h("h3", {}, `Draft of ${result.name}`),
    h(
      "p",
      {},
      `From ${result.rows_sampled} row(s)`,
      result.rows_skipped ? `, ${result.rows_skipped} left out` : "",
      `. Candidate keys: ${result.candidate_keys.length ? result.candidate_keys.join(", ") : "none"}.`,
    ),
    result.notes.length ? h("ul", { class: "notes" }, result.notes.map((note) => h("li", {}, note))) : null,
    table("Inferred fields", ["Field", "Type", "Required", "Header"], fields, { class: "inferred" }),
    h("label", { for: "draft-toml" }, "Declaration (TOML): edit before declaring"),
    h(
      "p",
      { class: "hint", id: "draft-help" },
      "Set key = [\"…\"] to make rows with the same key update each other; rename fields, change types, add aliases.",
    ),
    editor,
    h("div", { class: "actions" }, declare),
    outcome,
  );
  declare.addEventListener("click", async () => {
    const name = (/^\s*name\s*=\s*"([a-z_][a-z0-9_]*)"/m.exec(editor.value) || [])[1] || result.name;
    declare.disabled = true;
    try {
      const response = await call(`/datasets/${encodeURIComponent(name)}`, {
        method: "PUT",
        headers: { "Content-Type": "application/toml" },
        body: editor.value,
        signal,
      });
      const dataset = await response.json();
      fill(
        outcome,
        h("p", { class: "success", role: "status" }, `Dataset ${dataset.name} ${dataset.outcome}: version ${dataset.version}.`),
      );
      declared();
    } catch (error) {
      const advice = error.status === 403 ? " Declaring a dataset needs an admin key." : "";
      fill(outcome, h("p", { class: "error-text", role: "alert" }, `Not declared: ${error.message}.${advice}`));
    } finally {
      declare.disabled = false;
    }
  });
}
