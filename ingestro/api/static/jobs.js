// The Jobs list (refreshed every two seconds while shown) and a job's page, live from its event stream.

import { download, followJob, getJson, query, sleep } from "./api.js";
import { fill, formatCount, formatTime, h, notify, statusBadge, table } from "./dom.js";

const REFRESH_MS = 2000;

export async function renderJobs(main, signal) {
  const body = h("div", { "aria-live": "polite", "aria-busy": "true" }, "Loading…");
  fill(main, h("h1", {}, "Jobs"), h("p", { class: "hint" }, "Newest first; updated as they run."), body);
  while (!signal.aborted) {
    try {
      const jobs = (await getJson("/jobs?limit=50", { signal })).items;
      body.setAttribute("aria-busy", "false");
      fill(body, jobs.length ? jobsTable(jobs) : h("p", {}, "No jobs yet. Upload a file to make one."));
    } catch (error) {
      if (signal.aborted) return;
      fill(body, h("p", { class: "error-text", role: "alert" }, `Cannot list the jobs: ${error.message}`));
      if (error.status === 401 || error.status === 403) return;
    }
    await sleep(REFRESH_MS, signal);
  }
}

function jobsTable(jobs) {
  const rows = jobs.map((job) => [
    h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, job.filename || job.job_id),
    job.dataset || "–",
    statusBadge(job.status),
    formatCount(job.rows_total),
    formatCount(job.rows_accepted),
    formatCount(job.rows_rejected),
    formatTime(job.received_at),
  ]);
  return table("Jobs", ["File", "Dataset", "Status", "Rows", "Accepted", "Rejected", "Received"], rows, {
    class: "jobs",
  });
}

const COUNTS = [
  ["rows_total", "Rows read"],
  ["rows_accepted", "Accepted"],
  ["rows_rejected", "Rejected"],
  ["rows_inserted", "Inserted"],
  ["rows_updated", "Updated"],
  ["rows_duplicate", "Duplicates"],
];
const PAGE_SIZES = [10, 50, 100];

export async function renderJob(main, signal, jobId) {
  let job;
  try {
    job = await getJson(`/jobs/${encodeURIComponent(jobId)}`, { signal });
  } catch (error) {
    if (signal.aborted) return;
    fill(main, h("h1", {}, "Job"), h("p", { class: "error-text", role: "alert" }, error.message));
    return;
  }
  const status = h("p", { class: "job-status", role: "status", "aria-live": "polite" });
  const counts = h("dl", { class: "counts" });
  const facts = h("dl", { class: "facts" });
  const failure = h("div", { class: "failure" });
  const rejected = h("section", { class: "rejected", "aria-labelledby": "rejected-title" });
  fill(
    main,
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("h1", {}, "Job ", h("span", { class: "file-name" }, job.filename || job.job_id)),
    status,
    counts,
    failure,
    facts,
    rejected,
  );

  const show = () => {
    fill(status, "Status: ", statusBadge(job.status));
    fill(
      counts,
      COUNTS.map(([name, label]) => [
        h("div", { class: "count" }, h("dt", {}, label), h("dd", { "data-count": name }, formatCount(job[name]))),
      ]),
    );
    const seconds = duration(job);
    const rows = (job.rows_accepted || 0) + (job.rows_rejected || 0);
    fill(
      facts,
      fact("Job id", job.job_id),
      fact("Dataset", `${job.dataset} (version ${job.dataset_version ?? "–"})`),
      fact("Format", `${job.format || "–"}, ${formatCount(job.bytes)} bytes`),
      fact("Received", formatTime(job.received_at)),
      fact("Duration", seconds === null ? "–" : `${seconds.toFixed(2)} s`),
      fact("Throughput", seconds ? `${formatCount(Math.round(rows / seconds))} rows/s` : "–"),
      fact("Unknown columns", job.unknown_columns?.length ? job.unknown_columns.join(", ") : "none"),
      fact("Column mapping", mappingList(job.column_map)),
      job.previously_ingested_as?.length
        ? fact("Same file before", job.previously_ingested_as.map((id) => h("a", { href: `#/jobs/${encodeURIComponent(id)}` }, `${id} `)))
        : null,
    );
    fill(
      failure,
      job.error
        ? h(
            "div",
            { class: "job-error", role: "alert" },
            h("h2", {}, job.status === "failed" ? "Why it failed" : "What went wrong"),
            h("p", {}, job.error, job.error_line ? ` (line ${job.error_line})` : ""),
          )
        : null,
    );
  };
  show();
  const errors = errorsSection(rejected, job, signal);
  errors.load();

  if (job.status === "completed" || job.status === "failed") return;
  try {
    await followJob(
      job.job_id,
      (event, data) => {
        Object.assign(job, data);
        if (event === "status" && ["completed", "failed"].includes(data.status)) {
          // The row has the final timestamps and unknown columns the events do not carry.
          getJson(`/jobs/${encodeURIComponent(job.job_id)}`, { signal })
            .then((final) => {
              Object.assign(job, final);
              show();
              errors.load();
            })
            .catch(() => {});
        }
        show();
      },
      signal,
    );
  } catch (error) {
    if (!signal.aborted) notify(`Live updates stopped: ${error.message}`, "error");
  }
}

/** The upload's column mapping (?map=): each column and the field it was read as, or that it was ignored. */
function mappingList(columnMap) {
  const entries = Object.entries(columnMap || {});
  if (!entries.length) return "none";
  return h(
    "ul",
    { class: "column-map" },
    entries.map(([column, field]) => h("li", {}, h("span", { class: "column-name" }, column), field ? ` → ${field}` : " ignored")),
  );
}

function fact(label, value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}

function duration(job) {
  const start = Date.parse(job.started_at || job.received_at || "");
  if (Number.isNaN(start)) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return Math.max(0, (end - start) / 1000);
}

/** The rejected rows: counts per code, filters by field and code, pages by the API's cursors, CSV download. */
function errorsSection(section, job, signal) {
  const state = { cursors: [null], page: 0, field: "", code: "", limit: 50 };
  const summary = h("div", { class: "codes" });
  const fieldFilter = h("select", { id: "filter-field" });
  const codeFilter = h("select", { id: "filter-code" });
  const sizeSelect = h(
    "select",
    { id: "page-size" },
    PAGE_SIZES.map((size) => h("option", { value: size, selected: size === state.limit }, size)),
  );
  const rows = h("div", { class: "error-rows", "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const where = h("span", { class: "page-number" });
  const csv = h("button", { type: "button" }, "Download CSV");
  fill(
    section,
    h("h2", { id: "rejected-title" }, "Rejected rows"),
    summary,
    h(
      "div",
      { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "filter-field" }, "Field"), fieldFilter),
      h("div", { class: "field" }, h("label", { for: "filter-code" }, "Code"), codeFilter),
      h("div", { class: "field" }, h("label", { for: "page-size" }, "Rows per page"), sizeSelect),
      csv,
    ),
    rows,
    h("div", { class: "pager" }, previous, where, next),
  );

  const refilter = () => {
    state.field = fieldFilter.value;
    state.code = codeFilter.value;
    state.limit = Number(sizeSelect.value);
    state.cursors = [null];
    state.page = 0;
    loadPage();
  };
  fieldFilter.addEventListener("change", refilter);
  codeFilter.addEventListener("change", refilter);
  sizeSelect.addEventListener("change", refilter);
  previous.addEventListener("click", () => {
    state.page -= 1;
    loadPage();
  });
  next.addEventListener("click", () => {
    state.page += 1;
    loadPage();
  });
  csv.addEventListener("click", async () => {
    try {
      const filters = query({ format: "csv", field: state.field, code: state.code });
      await download(`/jobs/${encodeURIComponent(job.job_id)}/errors${filters}`, `${job.job_id}-errors.csv`);
      notify("The rejected rows were downloaded as CSV.");
    } catch (error) {
      notify(`Cannot download the rejected rows: ${error.message}`, "error");
    }
  });

  async function loadCounts() {
    const counts = (await getJson(`/jobs/${encodeURIComponent(job.job_id)}/errors/counts`, { signal })).items;
    const byCode = new Map();
    const fields = new Set();
    for (const { code, field, errors } of counts) {
      byCode.set(code, (byCode.get(code) || 0) + errors);
      if (field) fields.add(field);
    }
    fill(
      summary,
      byCode.size
        ? h(
            "ul",
            { class: "code-counts", "aria-label": "Errors per code" },
            [...byCode].map(([code, count]) => h("li", {}, h("code", {}, code), ` ${formatCount(count)}`)),
          )
        : h("p", {}, "No rejected rows."),
    );
    const option = (value, label, chosen) => h("option", { value, selected: value === chosen }, label);
    fill(fieldFilter, option("", "Any field", state.field), [...fields].sort().map((f) => option(f, f, state.field)));
    fill(codeFilter, option("", "Any code", state.code), [...byCode.keys()].sort().map((c) => option(c, c, state.code)));
  }

  async function loadPage() {
    const cursor = state.cursors[state.page];
    const path = `/jobs/${encodeURIComponent(job.job_id)}/errors${query({
      limit: state.limit,
      cursor,
      field: state.field,
      code: state.code,
    })}`;
    try {
      const page = await getJson(path, { signal });
      state.cursors[state.page + 1] = page.next_cursor;
      const shown = (error) => (!state.field || error.field === state.field) && (!state.code || error.code === state.code);
      const cells = page.items.flatMap((row) =>
        (row.errors.length ? row.errors.filter(shown) : [{ field: null, code: "", message: "" }]).map((error) => [
          String(row.line),
          error.field || "(row)",
          h("code", {}, error.code),
          error.message,
        ]),
      );
      fill(
        rows,
        cells.length
          ? table("Rejected rows, by line", ["Line", "Field", "Code", "Message"], cells, { class: "errors" })
          : h("p", {}, state.field || state.code ? "No rejected row matches these filters." : "No rejected rows."),
      );
      previous.disabled = state.page === 0;
      next.disabled = !page.next_cursor;
      fill(where, `Page ${state.page + 1}`);
    } catch (error) {
      if (!signal.aborted) fill(rows, h("p", { class: "error-text", role: "alert" }, error.message));
    }
  }

  return {
    load() {
      loadCounts()
        .then(loadPage)
        .catch((error) => {
          if (!signal.aborted) fill(rows, h("p", { class: "error-text", role: "alert" }, error.message));
        });
    },
  };
}
