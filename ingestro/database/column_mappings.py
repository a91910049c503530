"""Saved column mappings: one per tenant, dataset and header shape (``db/008_column_mappings.sql``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ingestro.datasets.column_maps import ColumnMap, header_shape


async def save_mapping(
    pool: asyncpg.Pool,
    tenant: str,
    dataset: str,
    columns: list[str],
    column_map: ColumnMap,
    saved_by: str | None,
) -> dict[str, Any]:
    """Save ``column_map`` for files of ``dataset`` whose header is ``columns`` (replacing the one saved for that
    shape); the saved mapping as ``find_mapping`` gives it."""
    row = await pool.fetchrow(
        """
        INSERT INTO column_mappings (tenant, dataset, shape, columns, column_map, saved_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant, dataset, shape) DO UPDATE
           SET columns = EXCLUDED.columns, column_map = EXCLUDED.column_map,
               saved_by = EXCLUDED.saved_by, saved_at = now()
        RETURNING dataset, shape, columns, column_map, saved_at
        """,
        tenant,
        dataset,
        header_shape(columns),
        columns,
        column_map,
        saved_by,
    )
    return _view(row)


async def find_mapping(pool: asyncpg.Pool, tenant: str, dataset: str, columns: list[str]) -> dict[str, Any] | None:
    """The mapping saved by ``tenant`` for files of ``dataset`` with the shape of header ``columns``, or None."""
    row = await pool.fetchrow(
        "SELECT dataset, shape, columns, column_map, saved_at FROM column_mappings"
        " WHERE tenant = $1 AND dataset = $2 AND shape = $3",
        tenant,
        dataset,
        header_shape(columns),
    )
    return None if row is None else _view(row)


def _view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "dataset": row["dataset"],
        "shape": row["shape"],
        "columns": row["columns"],
        "map": row["column_map"],
        "saved_at": row["saved_at"].isoformat(),
    }
