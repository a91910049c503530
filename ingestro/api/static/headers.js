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

/** Media types the server inflates as gzip (ingestro.api.upload_options.GZIP_MEDIA_TYPES). */
export const GZIP_MEDIA_TYPES = ["application/gzip", "application/x-gzip"];

/** Whether the server inflates ``file`` as gzip: told by its name (x.csv.gz) or its media type, as is_gzip. */
export function toldGzip(file) {
  return /\.gz$/i.test(file.name) || GZIP_MEDIA_TYPES.includes((file.type || "").toLowerCase());
}

/**
 * The first ``limit`` inflated bytes of the gzip ``blob``: {bytes, cut} (cut: more may follow). Inflated as a
 * stream and stopped there, so a large file or a gzip bomb costs no more than its first bytes; a stream corrupt
 * before ``limit`` bytes gives what came before it (cut), or throws when nothing did.
 */
export async function inflatedHead(blob, limit = PREVIEW_BYTES) {
  const reader = blob.stream().pipeThrough(new DecompressionStream("gzip")).getReader();
  const bytes = new Uint8Array(limit);
  let size = 0;
  try {
    while (size < limit) {
      let read;
      try {
        read = await reader.read();
      } catch (error) {
        if (size === 0) throw error;
        return { bytes: bytes.subarray(0, size), cut: true };
      }
      if (read.done) return { bytes: bytes.subarray(0, size), cut: false };
      const chunk = read.value.subarray(0, limit - size);
      bytes.set(chunk, size);
      size += chunk.length;
    }
    return { bytes, cut: true };
  } finally {
    reader.cancel().catch(() => {}); // stops inflating (and reading the file) here
  }
}

/** The first bytes of ``file`` as the server will read them: inflated when it is told gzip. */
async function headOf(file) {
  if (toldGzip(file)) return { ...(await inflatedHead(file)), compressed: true };
  const bytes = new Uint8Array(await file.slice(0, PREVIEW_BYTES).arrayBuffer());
  return { bytes, cut: file.size > PREVIEW_BYTES, compressed: false };
}

/**
 * What the browser can tell of a file before sending it: {format, columns, rows (first few, as arrays),
 * delimiter, compressed} or {format, unreadable: reason}. A gzip file is read from its first 64 KiB inflated.
 */
export async function readHeader(file) {
  const format = formatOf(file.name);
  let head;
  try {
    head = await headOf(file);
  } catch (error) {
    if (!toldGzip(file)) throw error;
    return { format, unreadable: `not a readable gzip stream (${error.message})` };
  }
  if (!head.compressed && head.bytes[0] === 0x1f && head.bytes[1] === 0x8b) {
    return {
      format,
      unreadable: "gzip-compressed, but its name does not end in .gz: the server would not inflate it; name it x.csv.gz",
    };
  }
  let text = new TextDecoder("utf-8").decode(head.bytes).replace(/^\uFEFF/, "");
  if (head.cut) {
    const cut = Math.max(text.lastIndexOf("\n"), text.lastIndexOf("\r"));
    if (cut > 0) text = text.slice(0, cut + 1); // the last line may be cut short
  }
  const compressed = head.compressed;
  const kind = format || (/^\s*[[{]/.test(text) ? "json" : "csv");
  if (kind === "csv") {
    const firstLine = text.split(/\r\n|\r|\n/).find((line) => line.trim() !== "") || "";
    const delimiter = sniffDelimiter(firstLine);
    const [columns, ...rows] = csvRecords(text, delimiter, 6);
    if (!columns) return { format: kind, unreadable: "no header line found" };
    return { format: kind, columns, rows, delimiter, compressed };
  }
  const first = firstObject(text);
  if (!first) return { format: kind, unreadable: "no JSON object found at the start of the file" };
  const columns = Object.keys(first);
  return { format: kind, columns, rows: [columns.map((column) => displayValue(first[column]))], compressed };
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
