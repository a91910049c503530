// Calls to the Ingestro API. The key lives in sessionStorage for this tab's session and travels
// only as "Authorization: Bearer": never in a URL (so never in a log or a Referer), never in a cookie.

import { EventStreamParser } from "./sse.js";

const KEY = "ingestro.api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function authorization() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** An answer the API refused: its status and the problem's detail (RFC 9457), said as one line. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

async function refusal(response) {
  let title = `${response.status} ${response.statusText || "error"}`;
  let detail = "";
  try {
    const problem = await response.json();
    if (problem && typeof problem === "object") {
      title = typeof problem.title === "string" ? problem.title : title;
      detail = typeof problem.detail === "string" ? problem.detail : "";
    }
  } catch {
    // not a problem document: the status says it
  }
  const error = new ApiError(response.status, title, detail);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("ingestro:unauthorized", { detail: error }));
  return error;
}

/** fetch() with the key; the Response when it is 2xx, else throws ApiError. */
export async function call(path, options = {}) {
  const headers = { Accept: "application/json", ...authorization(), ...(options.headers || {}) };
  let response;
  try {
    response = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The API cannot be reached", String(error.message || error));
  }
  if (!response.ok) throw await refusal(response);
  return response;
}

export async function getJson(path, options = {}) {
  return (await call(path, options)).json();
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Upload ``file`` as multipart with XMLHttpRequest (fetch has no upload progress).
 * ``params`` become the query string (dataset, and the column mapping as ``map``); ``onProgress(sent, total)``.
 * Resolves to the accepted job; rejects with ApiError. An Idempotency-Key makes a retry safe.
 */
export function uploadFile(file, params, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/upload${query(params)}`);
    for (const [name, value] of Object.entries(authorization())) request.setRequestHeader(name, value);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("Idempotency-Key", crypto.randomUUID());
    request.withCredentials = false;
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        body = null;
      }
      if (request.status >= 200 && request.status < 300 && body) {
        onProgress(file.size, file.size);
        resolve(body);
        return;
      }
      const title = body && typeof body.title === "string" ? body.title : `${request.status} error`;
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      const error = new ApiError(request.status, title, detail);
      if (request.status === 401) window.dispatchEvent(new CustomEvent("ingestro:unauthorized", { detail: error }));
      reject(error);
    });
    request.addEventListener("error", () => reject(new ApiError(0, "The upload was cut", "the connection failed")));
    request.addEventListener("abort", () => reject(new ApiError(0, "The upload was cancelled", "")));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

const FINAL = new Set(["completed", "failed"]);

/**
 * Follow GET /jobs/{id}/events until the job ends or ``signal`` aborts: ``onEvent(name, data)`` per event.
 * Read with fetch() so the key stays in a header. A stream cut before the end is opened again
 * (the server starts each stream with the job's state now, so nothing is missed).
 */
export async function followJob(jobId, onEvent, signal) {
  let finished = false;
  while (!finished && !signal.aborted) {
    try {
      const response = await call(`/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { Accept: "text/event-stream" },
        signal,
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventStreamParser(({ event, data }) => {
        let parsed;
        try {
          parsed = JSON.parse(data);
        } catch {
          return;
        }
        if (event === "status" && FINAL.has(parsed.status)) finished = true;
        onEvent(event, parsed);
      });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (error) {
      if (signal.aborted || error.name === "AbortError") return;
      if (error instanceof ApiError && error.status !== 503 && error.status !== 0) throw error;
    }
    if (!finished && !signal.aborted) await sleep(2000, signal);
  }
}

export function sleep(milliseconds, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Save a response body as a file: fetched with the key, handed to the browser as a blob. */
export async function download(path, filename) {
  const response = await call(path, { headers: { Accept: "text/csv" } });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
