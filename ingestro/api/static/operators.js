// The Operators view (admin keys): dead letters with redrive, and the stream backlog per group.

import { call, getJson, sleep } from "./api.js";
import { fill, formatCount, formatTime, h, notify, table } from "./dom.js";

const REFRESH_MS = 5000;

export async function renderOperators(main, signal) {
  const letters = h("div", { "aria-live": "polite" }, "Loading…");
  const backlog = h("div", {}, "Loading…");
  fill(
    main,
    h("h1", {}, "Operators"),
    h("section", { "aria-labelledby": "dlq-title" }, h("h2", { id: "dlq-title" }, "Dead letters"), letters),
    h("section", { "aria-labelledby": "backlog-title" }, h("h2", { id: "backlog-title" }, "Stream backlog"), backlog),
  );
  while (!signal.aborted) {
    const ok = await Promise.all([loadLetters(letters, signal), loadBacklog(backlog, signal)]);
    if (ok.includes(false)) return;
    await sleep(REFRESH_MS, signal);
  }
}

async function loadLetters(container, signal) {
  try {
    const items = (await getJson("/dlq?limit=100", { signal })).items;
    const rows = items.map((letter) => {
      const button = h("button", { type: "button", "aria-label": `Redrive dead letter ${letter.id}` }, "Redrive");
      button.addEventListener("click", () => redrive(letter, button, container, signal));
      return [
        letter.id,
        letter.group,
        letter.event_type || "–",
        letter.job_id ? h("a", { href: `#/jobs/${encodeURIComponent(letter.job_id)}` }, letter.job_id) : "–",
        `${letter.error_type}: ${letter.error_message}`,
        String(letter.deliveries),
        formatTime(letter.last_failure),
        button,
      ];
    });
    fill(
      container,
      rows.length
        ? table("Dead letters, oldest first", ["Id", "Group", "Event", "Job", "Error", "Deliveries", "Last failure", ""], rows)
        : h("p", {}, "No dead letters."),
    );
    return true;
  } catch (error) {
    if (!signal.aborted) fill(container, h("p", { class: "error-text", role: "alert" }, explain(error)));
    return false;
  }
}

async function redrive(letter, button, container, signal) {
  button.disabled = true;
  try {
    const done = await (await call(`/dlq/${encodeURIComponent(letter.id)}/redrive`, { method: "POST", signal })).json();
    notify(`Dead letter ${done.id} redriven to ${done.stream} as ${done.redriven_as}.`);
    await loadLetters(container, signal);
  } catch (error) {
    button.disabled = false;
    notify(`Not redriven: ${error.message}`, "error");
  }
}

async function loadBacklog(container, signal) {
  try {
    const streams = (await getJson("/streams", { signal })).streams;
    const rows = streams.flatMap((stream) =>
      stream.groups.length
        ? stream.groups.map((group) => [
            stream.stream,
            formatCount(stream.length),
            group.group,
            group.lag === null ? "unknown" : formatCount(group.lag),
            formatCount(group.pending),
            group.pending ? `${group.oldest_pending_idle_s.toFixed(1)} s` : "–",
            String(group.consumers),
          ])
        : [[stream.stream, formatCount(stream.length), "–", "–", "–", "–", "–"]],
    );
    fill(
      container,
      table("Streams and consumer groups", ["Stream", "Length", "Group", "Lag", "Pending", "Oldest pending", "Consumers"], rows),
    );
    return true;
  } catch (error) {
    if (!signal.aborted) fill(container, h("p", { class: "error-text", role: "alert" }, explain(error)));
    return false;
  }
}

function explain(error) {
  return error.status === 403 ? `Operators' views need an admin key. ${error.message}` : error.message;
}
