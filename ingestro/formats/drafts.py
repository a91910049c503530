"""A draft declaration from the start of a file: ``POST /datasets/infer`` and ``ingestro datasets infer`` alike.

The sample is read (``ingestro.formats.sample``) and its draft inferred (``ingestro.datasets.inference``);
the answer carries the draft as TOML, with comments for its reviewer, and as JSON.
"""

from __future__ import annotations

from typing import Any

from ingestro.datasets.declarations import unstructured
from ingestro.datasets.inference import declaration_toml, infer_dataset
from ingestro.formats.sample import Sample, read_sample

#: Largest sample read: enough rows to judge types, little enough to hold in memory.
MAX_SAMPLE_BYTES = 1024 * 1024
#: Rows of the sample looked at, at most.
MAX_SAMPLE_ROWS = 10_000


def draft_of_sample(
    data: bytes, name: str, file_format: str, delimiter: str | None, encoding: str | None, filename: str
) -> dict[str, Any]:
    """The draft of dataset ``name`` inferred from ``data``: ``toml``, ``declaration`` (JSON), ``candidate_keys``,
    ``columns``, ``rows_sampled``, ``rows_skipped``, ``format``, ``delimiter``, ``notes``.

    Raises ``UnreadableSample`` when ``data`` gives no columns.
    """
    sample: Sample = read_sample(data, file_format, delimiter=delimiter, encoding=encoding, max_rows=MAX_SAMPLE_ROWS)
    draft = infer_dataset(name, sample.columns, sample.rows)
    notes = list(draft.notes)
    if sample.skipped:
        notes.append(f"{sample.skipped} row(s) of the sample did not parse and were left out")
    source = f" of {filename}" if filename else ""
    comments = [f"Draft inferred from {draft.rows_sampled} row(s){source}: review it before declaring."]
    if draft.candidate_keys:
        comments.append(
            f"Candidate keys (present and distinct in the sample): {', '.join(draft.candidate_keys)};"
            f' set key = ["{draft.candidate_keys[0]}"] to make rows with the same one update each other.'
        )
    comments += notes
    return {
        "name": name,
        "toml": declaration_toml(draft.dataset, comments),
        "declaration": unstructured(draft.dataset),
        "candidate_keys": list(draft.candidate_keys),
        "columns": list(sample.columns),
        "rows_sampled": draft.rows_sampled,
        "rows_skipped": sample.skipped,
        "format": file_format,
        "delimiter": sample.delimiter,
        "notes": notes,
    }
