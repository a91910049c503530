"""Every projection, registered once: adding one means writing its module and listing its class here.

The process wiring, replay, retention, the metrics collector, ``ingestro streams`` and the CLI's choices
all take the projections (and which streams each reads) from ``PROJECTIONS``; the lower layers
(``ingestro.streams``) receive that as data from the entry points, never by importing this.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.data import DataProjection
from projections.errors import ErrorsProjection
from projections.jobs import JobsProjection
from projections.projection import Projection

#: Each projection class by its name (its consumer group), in the order ``ingestro replay all`` runs them.
PROJECTIONS: Mapping[str, type[Projection]] = {
    projection.name: projection for projection in (DataProjection, ErrorsProjection, JobsProjection)
}


class UnknownProjection(ValueError):
    """No projection has that name."""


def projection_named(name: str, registry: Mapping[str, type[Projection]] = PROJECTIONS) -> type[Projection]:
    """The projection class called ``name``; UnknownProjection names the choices."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownProjection(f"unknown projection {name!r}; choose from {', '.join(registry)}") from None


def projection_streams(registry: Mapping[str, type[Projection]] = PROJECTIONS) -> dict[str, tuple[str, ...]]:
    """The streams each projection reads, by its name (its consumer group)."""
    return {name: projection.streams for name, projection in registry.items()}
