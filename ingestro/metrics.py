"""Every Prometheus metric Ingestro exports, defined once.

Counters and histograms live in the process-wide default registry: each process
(the API, every consumer replica) exports what it did itself, and Prometheus sums
over replicas. The gauges below the line are not kept by any process: they
describe shared state (Redis streams, the jobs table) and are computed at scrape
time by ``ingestro.streams.collector``, only in the API, so N replicas do not report the
same backlog N times.

Labels are bounded sets (group, stream, event type, dataset, format, outcome,
status); never a job id or a file name.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `*_created` series double the series count and no dashboard or alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

# ------------------------------------------------------------------ API (uploads)

UPLOADS = Counter(
    "ingestro_uploads_total",
    "Uploads received, by outcome (accepted, or why refused) and file format (unknown when not told)",
    ["outcome", "format"],
)
UPLOAD_BYTES = Counter("ingestro_upload_bytes_total", "Bytes of accepted uploads, by file format", ["format"])

# ------------------------------------------------------------------------- parser

ROWS_PARSED = Counter(
    "ingestro_rows_parsed_total",
    "Rows the parser read, by dataset and outcome (accepted or rejected); a re-parse counts again",
    ["dataset", "outcome"],
)

ROW_BACKLOG = Gauge(
    "ingestro_row_backlog_entries",
    "Entries of a row stream its slowest group has not acked (lag + pending), as the parser last read it before"
    " publishing (ingestro.streams.backpressure); with several parser replicas, aggregate with max",
    ["stream"],
)
PARSER_PAUSED_SECONDS = Counter(
    "ingestro_parser_paused_seconds_total",
    "Time the parser waited for a row stream's backlog to fall back to INGESTRO_MAX_BACKLOG",
)

# ------------------------------------------------------------------------ streams

EVENTS_PUBLISHED = Counter(
    "ingestro_events_published_total", "Events appended to the streams, by stream and event type", ["stream", "type"]
)

# ------------------------------------------------------------------------ runtime

ENTRIES_PROCESSED = Counter(
    "ingestro_entries_processed_total",
    "Stream entries a consumer finished, by group and outcome: handled (acked) or failed (left to retry)",
    ["group", "outcome"],
)
ENTRY_HANDLING_SECONDS = Histogram(
    "ingestro_entry_handling_seconds",
    "Time one handler call took, by group: a whole file for parser; for the projections a row batch,"
    " or several fresh batches applied in one transaction",
    ["group"],
    # From a small batch on a warm pool up to a large file in the parser.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
REDELIVERIES = Counter(
    "ingestro_redeliveries_total", "Entries handled again after an earlier delivery did not finish, by group", ["group"]
)
RECLAIMS = Counter(
    "ingestro_reclaims_total",
    "Entries taken over from another consumer after the visibility timeout, by group",
    ["group"],
)
DEAD_LETTERED = Counter(
    "ingestro_entries_dead_lettered_total", "Entries written to the dead-letter stream, by group", ["group"]
)

# -------------------------------------------------------------------- projections

ROWS_UPSERTED = Counter(
    "ingestro_rows_upserted_total",
    "Accepted rows applied to their dataset's table, by dataset and outcome: inserted (new) or duplicate",
    ["dataset", "outcome"],
)

# ------------------------------------------------------ scrape-time collector

COLLECTOR_ERRORS = Counter(
    "ingestro_collector_errors_total",
    "Scrapes whose shared-state gauges could not be read, by source (redis or postgres)",
    ["source"],
)

# Gauges computed on scrape by ingestro.streams.collector (names only: they are built per scrape).
STREAM_LENGTH = "ingestro_stream_length"
GROUP_LAG = "ingestro_group_lag"
GROUP_PENDING = "ingestro_group_pending"
GROUP_OLDEST_PENDING_IDLE_SECONDS = "ingestro_group_oldest_pending_idle_seconds"
GROUP_CONSUMERS = "ingestro_group_consumers"
JOBS = "ingestro_jobs"
