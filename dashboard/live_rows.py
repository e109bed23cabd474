"""Error rows fetched and rendered once per Daphne process, however many dashboards are open.

A push is made once per view (dashboard/hub.py), but views of one project share their new
rows: the first view to ask fetches all missing ids in one query, the others await that same
fetch, and results stay in small LRUs (stored events never change, so a cached row never goes
stale).

Two levels, because a burst stores far more errors than a page shows: `row_metas` is the cheap
part (code, source, arrival) every page needs to pick its newest 20 matching rows, and
`row_html` renders, with the page's own `#error-row` partial, only the rows some page shows.
The worker's notice carries that cheap part for every new error (`metas_remember`), so picking
reads nothing; what a page then shows comes with its metadata as read from the database, and
the page checks it again there (errorsink/live.py: notices are hints).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from dashboard.live_db import live_read
from dashboard.present import error_rows_annotate
from errorsink.live import StoredEvent, moment_of
from errorsink.sessions.models import Event
from errorsink.sessions.selectors import EventMeta, event_metas_by_ids, events_by_ids

log = logging.getLogger(__name__)

ERROR_ROW = "dashboard/project.html#error-row"
CACHE_SIZE = 5000


class _SharedCache:
    """An LRU by primary key whose misses are fetched once, whoever else is waiting for them."""

    def __init__(self, fetch: Callable[[list[int]], dict], size: int = CACHE_SIZE) -> None:
        self.fetch = fetch
        self.size = size
        self.items: OrderedDict[int, object] = OrderedDict()
        self.inflight: dict[int, asyncio.Future] = {}

    def clear(self) -> None:
        self.items.clear()

    def remember(self, found: dict) -> None:
        for pk, value in found.items():
            self.items[pk] = value
            self.items.move_to_end(pk)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    async def get_many(self, ids: Iterable[int]) -> dict:
        """Values by pk (ids that no longer exist are simply absent); one fetch at most."""
        wanted = list(dict.fromkeys(ids))
        found = {pk: self.items[pk] for pk in wanted if pk in self.items}
        waiting = {self.inflight[pk] for pk in wanted if pk not in found and pk in self.inflight}
        missing = [pk for pk in wanted if pk not in found and pk not in self.inflight]
        if missing:
            future = asyncio.get_running_loop().create_future()
            for pk in missing:
                self.inflight[pk] = future
            try:
                fetched = await live_read(self.fetch, missing)
                self.remember(fetched)
                future.set_result(fetched)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved here, so asyncio never warns about the waiters
                raise
            finally:
                for pk in missing:
                    self.inflight.pop(pk, None)
            found.update(fetched)
        for result in await asyncio.gather(*waiting, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("a shared row fetch failed; the next reconnect re-syncs: %r", result)
                continue
            found.update({pk: value for pk, value in result.items() if pk in wanted})
        return found


@dataclass(frozen=True, slots=True)
class RenderedRow:
    meta: EventMeta  # read with the row, from the database: what a page checks before showing it
    html: SafeString


# The caches hold plain tuples of ints, strings and datetimes, never objects: the collector
# stops tracking such a tuple the first time it sees it, so cached rows never reach the oldest
# generation. As objects (a meta, its UUID, a row, a SafeString), every push added a few hundred
# to it, and each full collection that this growth set off walked them all and stalled the
# event loop for 70 to 200 ms (docs/benchmarks.md, live at scale: the collector).
type PackedMeta = tuple[int, str, str, str, str, datetime]


def _packed(row: EventMeta | Event) -> PackedMeta:
    """A meta, or an event itself (it has the same fields), as the caches keep it."""
    return (row.pk, str(row.project_id), row.kind, row.code, row.source, row.received_at)


def _unpacked(packed: PackedMeta) -> EventMeta:
    pk, project_id, kind, code, source, received_at = packed
    return EventMeta(pk, _project_uuid(project_id), kind, code, source, received_at)


@functools.lru_cache(maxsize=1024)
def _project_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def _fetch_metas(ids: list[int]) -> dict[int, PackedMeta]:
    return {pk: _packed(meta) for pk, meta in event_metas_by_ids(ids=ids).items()}


def _error_row_markup(event: Event) -> str:
    """The row exactly as the page renders it (escaped there, so safe to wrap in a push), as a
    plain str: a SafeString is an object the collector tracks."""
    error_rows_annotate([event])
    return render_to_string(ERROR_ROW, {"event": event}).strip()


def _fetch_html(ids: list[int]) -> dict[int, tuple]:
    """By pk: the packed meta with the row's markup after it, one flat tuple (a nested one
    stays tracked until a second collection has seen it)."""
    return {event.pk: (*_packed(event), _error_row_markup(event))
            for event in events_by_ids(ids=ids)}  # fmt: skip


# Module level: shared by every consumer of this Daphne process (one event loop).
_metas = _SharedCache(_fetch_metas)
_html = _SharedCache(_fetch_html)


def cache_clear() -> None:
    _metas.clear()
    _html.clear()


async def row_metas(ids: Iterable[int]) -> dict[int, EventMeta]:
    return {pk: _unpacked(packed) for pk, packed in (await _metas.get_many(ids)).items()}


async def row_html(ids: Iterable[int]) -> dict[int, RenderedRow]:
    return {pk: RenderedRow(_unpacked(packed[:-1]), mark_safe(packed[-1]))
            for pk, packed in (await _html.get_many(ids)).items()}  # fmt: skip


def metas_remember(project_id: str, events: Iterable[StoredEvent]) -> None:
    """The metadata a notice brought for its errors, so `row_metas` need not read it."""
    found = {}
    for event in events:
        if event.hinted and event.pk not in _metas.items:
            found[event.pk] = (event.pk, project_id, event.kind, event.code, event.source,
                               moment_of(event.received_us))  # fmt: skip
    if found:
        _metas.remember(found)
