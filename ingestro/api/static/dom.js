// Building the page: every text from the API or a file goes in through textContent, never as HTML.

/** An element: h("a", {href: "#/jobs", class: "x"}, "text", child, ...). Attributes "on..." take listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace what ``element`` holds with ``children``. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A table with a caption, header cells and rows (arrays of cells: text or nodes), in a scrolling box. */
export function table(caption, headers, rows, attributes = {}) {
  return h(
    "div",
    { class: "scroll", role: "region", "aria-label": caption, tabindex: "0" },
    h(
      "table",
      attributes,
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

let noticeTimer;
/** Say ``message`` in the page's live region (read out by screen readers); ``kind``: info or error. */
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  notice.className = `notice ${kind}`;
  fill(notice, message);
  clearTimeout(noticeTimer);
  if (kind === "info") noticeTimer = setTimeout(() => fill(notice), 8000);
}

export function formatCount(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en");
}

export function formatBytes(count) {
  if (count < 1024) return `${count} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = count / 1024;
  for (const unit of units) {
    if (value < 1024 || unit === "GiB") return `${value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${count} B`;
}

export function formatTime(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : moment.toLocaleString("en-GB", { hour12: false });
}

/** A status as a badge: its text, and a class per status for colour (never colour alone). */
export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}
