"""Turn the raw items of one batch into event rows, and the items that cannot become one into
rejections with their reason: pure, no database and no Redis."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from errorsink.ingest.formats import BadItem, normalise_item
from errorsink.ingest.rows import EventRow


class Rejected(NamedTuple):
    item: bytes  # as it came off the queue
    reason: str


class Batch(NamedTuple):
    rows: list[EventRow]  # in the order of the items, which ``EventRow.seq`` records
    rejected: list[Rejected]


def batch_rows(items: list[bytes], *, received_at: datetime) -> Batch:
    rows, rejected = [], []
    for seq, item in enumerate(items):
        try:
            rows.append(EventRow.of(seq, normalise_item(item), item.decode(), received_at))
        except BadItem as exc:
            rejected.append(Rejected(item, exc.reason))
        except (TypeError, ValueError) as exc:  # e.g. nesting too deep to serialise
            rejected.append(Rejected(item, f"cannot be stored: {exc}"))
    return Batch(rows, rejected)
