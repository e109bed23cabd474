"""Each stored event's key (project, event id), the idempotency key, kept apart from the events
(docs/storage.md).

The event table is partitioned by day, and PostgreSQL enforces a unique key within one partition
only, while the key must hold whatever day a re-delivered item lands on: an item's time may be
missing (then its batch's arrival time stands in) or differ between two sends of one event id
(the Sentry SDK stamps each capture). So the keys live in ``errorsink_event_key``, unique on
(project, event id) within a generation of ``GENERATION_DAYS`` days of arrival, with the
stored event's id. Ingest writes a batch's keys there before its events: a key the current
generation holds already fails the write (then the batch takes the slower path that skips
stored events), and one the previous generation holds is found by one lookup per batch.

A key is so kept between one and two generations (7 to 14 days) after its event arrived, and
the same item pushed again within that is stored once; later, it is stored again. Generations
are partitions of the key table, made ahead and dropped whole, so no key is deleted row by row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
from django.db import OperationalError, connection, transaction

from errorsink.sessions.partitions import partitions_of, statistics_light

KEYS = "errorsink_event_key"
GENERATION_DAYS = 7
LOCK_TIMEOUT = "500ms"
_EPOCH = date(1970, 1, 1)


def generation_of(moment: datetime) -> int:
    return (moment.astimezone(UTC).date() - _EPOCH).days // GENERATION_DAYS


def generation_name(generation: int) -> str:
    return f"{KEYS}_g{generation}"


def generations() -> list[int]:
    """The generations that have a partition, oldest first."""
    prefix = f"{KEYS}_g"
    return sorted(int(name[len(prefix) :]) for name in partitions_of(KEYS)
                  if name.startswith(prefix))  # fmt: skip


def generation_make(generation: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {generation_name(generation)} PARTITION OF {KEYS} "
            f"FOR VALUES FROM ({generation}) TO ({generation + 1})"
        )
        statistics_light(cursor, generation_name(generation))


def generations_keep(*, now: datetime) -> tuple[list[int], list[int]]:
    """Make the current and the next generation, drop those before the previous one; returns
    (made, dropped). A drop that cannot have the table within LOCK_TIMEOUT waits for the next
    run."""
    current = generation_of(now)
    existing = generations()
    made = [g for g in (current, current + 1) if g not in existing]
    for generation in made:
        generation_make(generation)
    old = [g for g in existing if g < current - 1]
    if not old:
        return made, []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f"DROP TABLE {', '.join(generation_name(g) for g in old)}")
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return made, []
    return made, old


# The stored ids of keys among a batch's: the previous generation's (the current one's fail the
# batch's own write), or every generation's for a batch that failed it.
# The keys travel as one JSON array of [project, event id] pairs: made by orjson in C, where
# two array parameters were quoted element by element in Python (a tenth of ingest's time).
_STORED = f"""
SELECT k.project_id::text, k.event_id, k.event FROM {KEYS} k
JOIN (SELECT (pair->>0)::uuid AS project_id, pair->>1 AS event_id
      FROM json_array_elements(%s::json) AS pair) AS b
  ON k.project_id = b.project_id AND k.event_id = b.event_id
WHERE k.generation >= %s AND k.generation < %s
"""


def keys_stored(keys: list[tuple[str, str]], *, generations: range) -> dict[tuple[str, str], int]:
    """Of these (project, event id) keys, those stored in these generations, with their event's
    id."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_STORED, [orjson.dumps(keys).decode(), generations.start, generations.stop])
        return {(project, event_id): pk for project, event_id, pk in cursor.fetchall()}


_ready: set[int] = set()


def generation_ready(generation: int) -> None:
    """Make the generation's partition if beat has not (a stack stopped for a week): checked
    once per process and generation, so ingest does not look on every batch."""
    if generation in _ready:
        return
    if generation not in generations():
        generation_make(generation)
    _ready.add(generation)
