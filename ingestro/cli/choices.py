"""Argument choices taken from the registries, read only when argparse needs them.

``ingestro consume NAME`` offers the consumer groups (``ingestro.services.consumer_groups``) and
``ingestro replay`` the projections (``projections.registry``). Importing those means importing every
consumer and projection (asyncpg, the readers…), about half a second of CPU: too much for every
``ingestro upload``. argparse only reads a command's choices to check that command's argument or to
show its help, so these sequences import the registries at that moment and no sooner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import overload


class LazyChoices(Sequence[str]):
    """The names ``load`` returns, loaded on first use."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load

    @cached_property
    def _names(self) -> tuple[str, ...]:
        return tuple(self._load())

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def _consumer_names() -> Sequence[str]:
    from ingestro.services.consumer_groups import CONSUMER_NAMES

    return CONSUMER_NAMES


def _replay_choices() -> Sequence[str]:
    from projections.registry import PROJECTIONS

    return (*PROJECTIONS, "all")


#: ``ingestro consume``: every consumer group.
CONSUMERS = LazyChoices(_consumer_names)
#: ``ingestro replay``: every projection, or all of them.
REPLAYABLE = LazyChoices(_replay_choices)
