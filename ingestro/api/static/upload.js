// The Upload view: pick or drop files, see how each one's columns match the dataset, map the others to fields
// or ignore them (a mapping saved for the header's shape is applied by itself), send them with the mapping.

import { call, getJson, query, uploadFile } from "./api.js";
import { fill, formatBytes, h, notify, table } from "./dom.js";
import { PREVIEW_BYTES, columnKey, matchColumns, readHeader } from "./headers.js";

/** Uploads sent at once (the API lets a key send 4 at once by default). */
const AT_ONCE = 3;

export async function renderUpload(main, signal) {
  const picked = [];
  const select = h("select", { id: "dataset", name: "dataset" });
  const fileInput = h("input", {
    id: "files",
    type: "file",
    multiple: true,
    accept: ".csv,.tsv,.txt,.json,.ndjson,.jsonl,.gz",
  });
  const list = h("ol", { class: "files", "aria-label": "Files to upload" });
  const send = h("button", { type: "button", class: "primary", disabled: true }, "Upload");
  const drop = h(
    "div",
    { class: "drop", id: "drop" },
    h("p", {}, "Drop CSV, JSON or NDJSON files here (gzip too), or "),
    h("label", { for: "files", class: "button" }, "choose files"),
    fileInput,
  );
  fill(
    main,
    h("h1", {}, "Upload files"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "dataset" }, "Dataset"),
      select,
      h("p", { class: "hint", id: "dataset-hint" }, "Each file is checked against the dataset's latest version."),
    ),
    drop,
    list,
    h("div", { class: "actions" }, send),
  );

  let datasets = [];
  try {
    datasets = (await getJson("/datasets", { signal })).items;
  } catch (error) {
    if (signal.aborted) return;
    notify(`Cannot list the datasets: ${error.message}`, "error");
  }
  fill(select, datasets.map((dataset) => h("option", { value: dataset.name }, dataset.name)));
  if (datasets.some((dataset) => dataset.name === "contacts")) select.value = "contacts";
  const current = () => datasets.find((dataset) => dataset.name === select.value);

  function add(files) {
    for (const file of files) {
      const item = { file, header: null, mapping: {}, status: h("p", { class: "file-status", role: "status" }, "Ready") };
      item.progress = h("progress", { max: "100", value: "0", "aria-label": `Bytes of ${file.name} sent` });
      item.match = h("div", { class: "match" }, "Reading the header…");
      item.element = h(
        "li",
        { class: "file" },
        h("div", { class: "file-title" }, h("strong", { class: "file-name" }, file.name), ` ${formatBytes(file.size)}`),
        item.match,
        item.progress,
        item.status,
      );
      picked.push(item);
      list.append(item.element);
      readHeader(file)
        .then((header) => {
          item.header = header;
          showMatch(item, current());
          applySaved(item, current(), signal);
        })
        .catch((error) => fill(item.match, `Cannot read the file here: ${error.message}`));
    }
    send.disabled = picked.every((item) => item.sent);
  }

  fileInput.addEventListener("change", () => {
    add([...fileInput.files]);
    fileInput.value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add([...event.dataTransfer.files]);
  });
  select.addEventListener("change", () =>
    picked.forEach((item) => {
      if (!item.header || item.sent) return;
      item.mapping = {};
      showMatch(item, current());
      applySaved(item, current(), signal);
    }),
  );

  send.addEventListener("click", async () => {
    send.disabled = true;
    const waiting = picked.filter((item) => !item.sent);
    waiting.forEach((item) => (item.sent = true));
    const dataset = select.value;
    const workers = Array.from({ length: AT_ONCE }, async () => {
      while (waiting.length) await sendOne(waiting.shift(), dataset);
    });
    await Promise.all(workers);
    notify("Every file was sent. Follow the jobs below or on the Jobs page.");
  });
}

async function sendOne(item, dataset) {
  fill(item.status, "Sending…");
  try {
    const map = Object.keys(item.mapping).length ? JSON.stringify(item.mapping) : undefined;
    const job = await uploadFile(item.file, { dataset, map }, (sent, total) => {
      const percent = total ? Math.round((100 * sent) / total) : 100;
      item.progress.value = percent;
      item.progress.setAttribute("aria-valuetext", `${percent}% sent`);
    });
    fill(
      item.status,
      "Sent: ",
      h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}`, class: "job-link" }, `job ${job.job_id}`),
      ` (${job.format}, dataset ${job.dataset} v${job.dataset_version})`,
    );
  } catch (error) {
    item.element.classList.add("refused");
    fill(item.status, h("span", { class: "error-text" }, `Refused: ${error.message}`));
  }
}

/** The mapping saved for the file's header shape, if any, applied as if chosen (a choice made already wins). */
async function applySaved(item, dataset, signal) {
  if (!dataset || !item.header?.columns) return;
  const params = { columns: JSON.stringify(item.header.columns) };
  try {
    const saved = await getJson(`/datasets/${encodeURIComponent(dataset.name)}/mappings${query(params)}`, { signal });
    if (!saved.map || item.sent || Object.keys(item.mapping).length) return;
    // Keyed by this file's columns as written: the saved ones may differ in case or surrounding spaces.
    const byKey = new Map(Object.entries(saved.map).map(([column, field]) => [columnKey(column), field]));
    for (const column of item.header.columns) {
      if (byKey.has(columnKey(column))) item.mapping[column] = byKey.get(columnKey(column));
    }
    item.savedMapping = true;
    showMatch(item, dataset);
  } catch (error) {
    if (!signal.aborted) notify(`Cannot look up a saved mapping for ${item.file.name}: ${error.message}`, "error");
  }
}

async function saveMapping(item, dataset) {
  try {
    await call(`/datasets/${encodeURIComponent(dataset.name)}/mappings`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ columns: item.header.columns, map: item.mapping }),
    });
    item.savedMapping = true;
    notify(`Mapping saved: the next ${dataset.name} file with these columns maps itself.`);
    showMatch(item, dataset);
  } catch (error) {
    notify(`Cannot save the mapping: ${error.message}`, "error");
  }
}

/** The select that maps one column: as matched by its name, a field, or ignored. */
function columnChoice(item, dataset, match, index) {
  const chosen = Object.hasOwn(item.mapping, match.column) ? item.mapping[match.column] : undefined;
  const byName = matchColumns(dataset, [match.column]).matches[0].field;
  const choice = h(
    "select",
    { class: "map-column", "aria-label": `Field for column ${match.column}`, "data-index": String(index) },
    h("option", { value: "" }, byName ? `${byName} (by name)` : "no field (by name)"),
    dataset.fields.map((field) => h("option", { value: `field:${field.name}` }, field.name)),
    h("option", { value: "ignore" }, "ignore this column"),
  );
  choice.value = chosen === undefined ? "" : chosen === null ? "ignore" : `field:${chosen}`;
  choice.disabled = Boolean(item.sent);
  choice.addEventListener("change", () => {
    if (choice.value === "") delete item.mapping[match.column];
    else item.mapping[match.column] = choice.value === "ignore" ? null : choice.value.slice("field:".length);
    item.savedMapping = false;
    showMatch(item, dataset);
    item.match.querySelector(`select[data-index="${index}"]`)?.focus();
  });
  return choice;
}

/** The file's columns against the dataset's fields, each with its mapping: matched, mapped, ignored, unknown, and
 * the required fields missing. */
function showMatch(item, dataset) {
  const header = item.header;
  if (header.unreadable) {
    fill(item.match, h("p", { class: "hint" }, `Columns: ${header.unreadable}.`));
    return;
  }
  if (!dataset) {
    fill(item.match, h("p", { class: "hint" }, "Choose a dataset to see how the columns match."));
    return;
  }
  const { matches, missing, optional } = matchColumns(dataset, header.columns, item.mapping);
  const fitting = matches.filter((match) => match.state === "matched" || match.state === "mapped").length;
  const labels = {
    matched: "matched",
    mapped: "mapped",
    ignored: "ignored (mapping)",
    unknown: unknownLabel(dataset),
    duplicate: "duplicate: names a field twice",
  };
  const rows = matches.map((match, index) => [
    h("span", { class: "column-name" }, match.column),
    columnChoice(item, dataset, match, index),
    h("span", { class: `badge match-${match.state}` }, labels[match.state]),
  ]);
  const summary = [`${fitting} of ${matches.length} columns match dataset ${dataset.name}`];
  if (header.delimiter) summary.push(`delimiter ${header.delimiter === "\t" ? "tab" : `"${header.delimiter}"`}`);
  if (header.compressed) summary.push(`gzip: read from its first ${PREVIEW_BYTES / 1024} KiB, inflated here`);
  const mapped = Object.keys(item.mapping).length;
  fill(
    item.match,
    h("p", { class: "match-summary" }, summary.join("; "), "."),
    missing.length
      ? h(
          "p",
          { class: "missing", role: "alert" },
          `Missing required field${missing.length > 1 ? "s" : ""}: `,
          missing.join(", "),
          header.format === "csv" ? ". The job will fail: the header lacks them." : ". Rows without them are rejected.",
        )
      : h("p", { class: "all-required" }, "Every required field has a column."),
    optional.length
      ? h("p", { class: "optional-missing hint" }, `Optional fields without a column: ${optional.join(", ")}.`)
      : null,
    table(`Columns of ${item.file.name}`, ["Column in the file", "Field", "Match"], rows, { class: "columns" }),
    mapped
      ? h(
          "div",
          { class: "mapping-actions" },
          h(
            "p",
            { class: "mapping-state", role: "status" },
            item.savedMapping
              ? `The mapping saved for these columns is applied (${mapped} column${mapped > 1 ? "s" : ""}).`
              : `${mapped} column${mapped > 1 ? "s" : ""} mapped by hand; the mapping is sent with the file.`,
          ),
          item.savedMapping || item.sent
            ? null
            : h("button", { type: "button", class: "save-mapping", onclick: () => saveMapping(item, dataset) },
                "Save this mapping"),
        )
      : null,
  );
}

function unknownLabel(dataset) {
  if (dataset.unknown_columns === "keep") return "unknown: kept in extra_columns";
  if (dataset.unknown_columns === "reject") return "unknown: refused";
  return "unknown: ignored";
}
