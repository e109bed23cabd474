"""Error rows rendered once per Daphne process, however many dashboards are open.

Every open project page of a process receives the same `events.stored` message at the same
moment. Without sharing, 50 browsers on one project mean 50 identical queries and 50 renders
per batch; here the first consumer to ask fetches all missing ids in one query and renders them
with the page's own `#error-row` partial, the others await that same fetch, and the result stays
in a small LRU (stored events never change, so a cached row never goes stale).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from dashboard.present import error_rows_annotate
from dashboard.selectors import events_by_ids
from errorsink.models import Event

log = logging.getLogger(__name__)

ERROR_ROW = "dashboard/project.html#error-row"
CACHE_SIZE = 2000


@dataclass(frozen=True, slots=True)
class RenderedRow:
    pk: int
    project_id: object
    kind: str
    code: str
    source: str
    received_at: datetime
    html: str

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.received_at, self.pk)


_cache: OrderedDict[int, RenderedRow] = OrderedDict()
_inflight: dict[int, asyncio.Future] = {}


def cache_clear() -> None:
    _cache.clear()


def _remember(row: RenderedRow) -> None:
    _cache[row.pk] = row
    _cache.move_to_end(row.pk)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)


def error_row_render(event: Event) -> RenderedRow:
    """The row exactly as the page renders it; cached by primary key."""
    cached = _cache.get(event.pk)
    if cached is not None:
        return cached
    error_rows_annotate([event])
    row = RenderedRow(
        pk=event.pk,
        project_id=event.project_id,
        kind=event.kind,
        code=event.code,
        source=event.source,
        received_at=event.received_at,
        html=render_to_string(ERROR_ROW, {"event": event}).strip(),
    )
    _remember(row)
    return row


def _fetch_and_render(ids: list[int]) -> dict[int, RenderedRow]:
    return {event.pk: error_row_render(event) for event in events_by_ids(ids=ids)}


async def error_rows_for_ids(ids: Iterable[int]) -> dict[int, RenderedRow]:
    """Rows by pk (ids that no longer exist are simply absent); at most one query per call."""
    wanted = list(dict.fromkeys(ids))
    # .get, not `in` then [] : the render thread may evict between the two.
    found = {pk: row for pk in wanted if (row := _cache.get(pk)) is not None}
    waiting = {_inflight[pk] for pk in wanted if pk not in found and pk in _inflight}
    missing = [pk for pk in wanted if pk not in found and pk not in _inflight]
    if missing:
        future = asyncio.get_running_loop().create_future()
        for pk in missing:
            _inflight[pk] = future
        try:
            rendered = await database_sync_to_async(_fetch_and_render)(missing)
            future.set_result(rendered)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so asyncio never warns about the waiters
            raise
        finally:
            for pk in missing:
                _inflight.pop(pk, None)
        found.update(rendered)
    for result in await asyncio.gather(*waiting, return_exceptions=True):
        if isinstance(result, BaseException):
            log.warning("a shared row fetch failed; the next reconnect re-syncs: %r", result)
            continue
        found.update({pk: row for pk, row in result.items() if pk in wanted})
    return found
