// A picked file's header, read in the browser before anything is sent, and matched against a
// dataset's fields the way the server matches them (ingestro.datasets.rules.match_columns).

/** Bytes read from the start of a file for its preview. */
export const PREVIEW_BYTES = 64 * 1024;
/** Delimiters sniffed for, in the order that breaks ties (ingestro.formats.csv_rows.DELIMITERS). */
export const DELIMITERS = [",", ";", "\t", "|"];

/** The format of a file by its name, as the server tells it (before any .gz); null when the name does not say. */
export function formatOf(name) {
  const lower = name.toLowerCase().replace(/\.gz$/, "");
  if (/\.(csv|tsv|txt)$/.test(lower)) return "csv";
  if (/\.(ndjson|jsonl)$/.test(lower)) return "ndjson";
  if (/\.json$/.test(lower)) return "json";
  return null;
}

/** How a header or key is compared with field names and aliases: trimmed, any case. */
export function columnKey(name) {
  return name.trim().toLowerCase();
}

/** The delimiter found most often in the header line; a comma when none is. */
export function sniffDelimiter(line) {
  let best = ",";
  let most = 0;
  for (const candidate of DELIMITERS) {
    const count = line.split(candidate).length - 1;
    if (count > most) {
      best = candidate;
      most = count;
    }
  }
  return best;
}

/** CSV records of ``text`` (quotes, doubled quotes, line breaks inside quotes), at most ``limit``. */
export function csvRecords(text, delimiter, limit) {
  const records = [];
  let record = [];
  let cell = "";
  let quoted = false;
  let index = 0;
  while (index < text.length && records.length < limit) {
    const char = text[index];
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        cell += '"';
        index += 2;
        continue;
      }
      if (char === '"') quoted = false;
      else cell += char;
      index += 1;
      continue;
    }
    if (char === '"' && cell === "") {
      quoted = true;
    } else if (char === delimiter) {
      record.push(cell);
      cell = "";
    } else if (char === "\n" || char === "\r") {
      record.push(cell);
      cell = "";
      if (record.some((value) => value.trim() !== "")) records.push(record);
      record = [];
      if (char === "\r" && text[index + 1] === "\n") index += 1;
    } else {
      cell += char;
    }
    index += 1;
  }
  if (records.length < limit && index >= text.length && (cell !== "" || record.length)) {
    record.push(cell);
    if (record.some((value) => value.trim() !== "")) records.push(record);
  }
  return records;
}

/** The first JSON object of a JSON array or of NDJSON in ``text`` (which may be cut short), or null. */
export function firstObject(text) {
  const start = text.indexOf("{");
  if (start < 0) return null;
  let depth = 0;
  let inString = false;
  for (let index = start; index < text.length; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === "\\") index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === "{") depth += 1;
    else if (char === "}") {
      depth -= 1;
      if (depth === 0) {
        try {
          const value = JSON.parse(text.slice(start, index + 1));
          return value && typeof value === "object" && !Array.isArray(value) ? value : null;
        } catch {
          return null;
        }
      }
    }
  }
  return null;
}

/**
 * What the browser can tell of a file before sending it:
 * {format, columns, rows (first few, as arrays), delimiter} or {format, unreadable: reason}.
 */
export async function readHeader(file) {
  const head = new Uint8Array(await file.slice(0, PREVIEW_BYTES).arrayBuffer());
  const format = formatOf(file.name);
  if (/\.gz$/i.test(file.name) || (head[0] === 0x1f && head[1] === 0x8b)) {
    return { format, unreadable: "compressed (gzip): cannot preview its columns; the server reads it" };
  }
  let text = new TextDecoder("utf-8").decode(head).replace(/^\uFEFF/, "");
  if (file.size > PREVIEW_BYTES) {
    const cut = Math.max(text.lastIndexOf("\n"), text.lastIndexOf("\r"));
    if (cut > 0) text = text.slice(0, cut + 1); // the last line may be cut short
  }
  const kind = format || (/^\s*[[{]/.test(text) ? "json" : "csv");
  if (kind === "csv") {
    const firstLine = text.split(/\r\n|\r|\n/).find((line) => line.trim() !== "") || "";
    const delimiter = sniffDelimiter(firstLine);
    const [columns, ...rows] = csvRecords(text, delimiter, 6);
    if (!columns) return { format: kind, unreadable: "no header line found" };
    return { format: kind, columns, rows, delimiter };
  }
  const first = firstObject(text);
  if (!first) return { format: kind, unreadable: "no JSON object found at the start of the file" };
  const columns = Object.keys(first);
  return { format: kind, columns, rows: [columns.map((column) => displayValue(first[column]))] };
}

function displayValue(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * How ``columns`` match ``dataset``'s fields once ``mapping`` ({column: field, or null to ignore}, as the API's
 * ?map= takes it) is applied: one entry per column {column, field, state} with state "matched", "mapped",
 * "ignored", "unknown" or "duplicate"; and the required (``missing``) and ``optional`` fields no column names.
 */
export function matchColumns(dataset, columns, mapping = {}) {
  const fields = new Map();
  for (const field of dataset.fields) {
    for (const spelling of [field.name, ...(field.aliases || [])]) fields.set(columnKey(spelling), field.name);
  }
  const mapped = new Map(Object.entries(mapping).map(([column, field]) => [columnKey(column), field]));
  const seen = new Set();
  const matches = columns.map((column) => {
    const key = columnKey(column);
    if (mapped.has(key) && mapped.get(key) === null) return { column, field: null, state: "ignored" };
    const field = mapped.has(key) ? mapped.get(key) : fields.get(key) || null;
    const named = field || key;
    const state = seen.has(named) ? "duplicate" : mapped.has(key) ? "mapped" : field ? "matched" : "unknown";
    seen.add(named);
    return { column, field, state };
  });
  const absent = dataset.fields.filter((field) => !seen.has(field.name));
  const missing = absent.filter((field) => field.required).map((field) => field.name);
  const optional = absent.filter((field) => !field.required).map((field) => field.name);
  return { matches, missing, optional };
}
