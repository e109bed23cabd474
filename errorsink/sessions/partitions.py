"""The event table's daily partitions (docs/storage.md): made ahead, dropped whole.

``errorsink_event`` is partitioned by range of ``occurred_at``, one partition per UTC day named
``errorsink_event_pYYYYMMDD``, and a default partition for the rest (a clock years off, the days
before the first partition). The event's own time, so a session's timeline and a day's figures
read the days they cover; the idempotency key, which PostgreSQL would enforce within one
partition only, lives apart (errorsink/sessions/event_keys.py).

Made ahead: ``partitions_make`` creates the partitions from the day after the newest one (or
today) through ``DAYS_AHEAD`` days from now, so ingest never waits for one; rows of those days
that the default partition holds already (a clock running days ahead) move into the new one.

Dropped whole: a day's partition goes once every project's retention has passed its end and the
rollups have counted its rows (``partitions_drop``); the sessions whose last event it held go
with it. Detaching takes an exclusive lock on the event table for an instant, so the statement
waits at most ``LOCK_TIMEOUT`` for it (ingest's short transactions queue behind a waiting
detach) and one that timed out is tried again by the next run; the detached days are dropped
after, without the lock.
"""

from __future__ import annotations

import re
import time as time_module
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import OperationalError, connection, transaction

PARENT = "errorsink_event"
DEFAULT_PARTITION = "errorsink_event_default"
DAYS_AHEAD = 3
LOCK_TIMEOUT = "500ms"
# The statistics target of every column and index expression of a partition that ingest writes
# (docs/storage.md, statistics). Autovacuum analyzes a growing day's partition every minute;
# at PostgreSQL's default of 100 it samples 30,000 rows and took half a second of a core, a
# burst the live pages felt; at 10 it samples 3,000 and takes 40 ms.
STATISTICS_TARGET = 10
_NAME = re.compile(r"^errorsink_event_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def partitions_of(table: str) -> list[str]:
    """The names of a table's partitions; none for a table that is not partitioned."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def partition_days() -> list[date]:
    """The days that have a partition, oldest first."""
    days = [datetime.strptime(match[1], "%Y%m%d").date()
            for name in partitions_of(PARENT) if (match := _NAME.match(name))]  # fmt: skip
    return sorted(days)


def partitions_make(*, now: datetime) -> list[date]:
    """Partitions from the day after the newest one (today if there is none) through
    ``DAYS_AHEAD`` days from ``now``; returns the days made. One that cannot have the table
    within ``LOCK_TIMEOUT`` is left, with the days after it, to the next run."""
    today = now.astimezone(UTC).date()
    existing = partition_days()
    day = existing[-1] + timedelta(days=1) if existing else today
    made = []
    while day <= today + timedelta(days=DAYS_AHEAD):
        try:
            partition_make(day)
        except OperationalError as exc:
            if not _lock_timed_out(exc):
                raise
            break
        made.append(day)
        day += timedelta(days=1)
    return made


def partition_make(day: date) -> None:
    """One day's partition, with the rows of that day the default partition held: moved out
    first, since PostgreSQL refuses a partition whose rows the default partition has."""
    bounds = {"start": day_start(day), "end": day_start(day + timedelta(days=1))}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            f"CREATE TEMP TABLE event_moving AS "
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            f"WHERE occurred_at >= %(start)s AND occurred_at < %(end)s RETURNING *) "
            f"SELECT * FROM moved",
            bounds,
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {PARENT} "
            f"FOR VALUES FROM (%(start)s) TO (%(end)s)",
            bounds,
        )
        indexes_name(cursor, partition_name(day))
        statistics_light(cursor, partition_name(day))
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM event_moving")
        cursor.execute("DROP TABLE event_moving")  # now: a caller's transaction may make more


# Each index of a partition, with the name of the table's index it belongs to.
_PARTITION_INDEXES = """
SELECT c.relname, parent.relname FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_inherits i ON i.inhrelid = x.indexrelid
JOIN pg_class parent ON parent.oid = i.inhparent
WHERE x.indrelid = %s::regclass
"""


def indexes_name(cursor, partition: str) -> None:
    """Name a partition's indexes after the table's (``<partition>_event_timeline``): PostgreSQL
    names them from their columns, and plans read better with the name the code uses."""
    cursor.execute(_PARTITION_INDEXES, [partition])
    for name, parent in cursor.fetchall():
        wanted = f"{partition}_{parent}"
        if name != wanted:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{wanted}"')


# A table's index expressions: each index, and the positions in it that are expressions.
_INDEX_EXPRESSIONS = """
SELECT x.indexrelid::regclass::text, k.position FROM pg_index x,
unnest(x.indkey::int2[]) WITH ORDINALITY AS k(column_number, position)
WHERE x.indrelid = %s::regclass AND k.column_number = 0
"""


def statistics_light(cursor, table: str) -> None:
    """Give every column of ``table``, and every expression of its indexes, the statistics
    target ``STATISTICS_TARGET``: ANALYZE then samples a tenth of the rows it would. The plans
    of errorsink's reads (by project and time, by id, by key) rest on indexes, not on fine
    histograms."""
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped", [table],
    )  # fmt: skip
    columns = ", ".join(f'ALTER COLUMN "{column}" SET STATISTICS {STATISTICS_TARGET}'
                        for (column,) in cursor.fetchall())  # fmt: skip
    cursor.execute(f"ALTER TABLE {table} {columns}")  # one statement, one lock
    cursor.execute(_INDEX_EXPRESSIONS, [table])
    for index, position in cursor.fetchall():
        cursor.execute(
            f"ALTER INDEX {index} ALTER COLUMN {position} SET STATISTICS {STATISTICS_TARGET}"
        )


@contextmanager
def merged_in_order() -> Iterator[None]:
    """Plan the reads inside as each partition's index walked in the list's order and merged,
    never as every matching row collected and sorted.

    For "a project's newest errors" the merge reads a page of rows whatever the statistics
    say. The sort reads all of the project's rows in the partitions, and PostgreSQL picks it
    whenever it believes the project has few there: a day's partition before its first
    ANALYZE, or a project whose burst came after it (an incident). Under the load benchmark
    each API read then took 30 to 100 ms (docs/benchmarks.md)."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")
            yield
            # The enclosing transaction goes on, and its later reads may sort. (After a failed
            # read it is aborted, and a rollback to any savepoint undoes the setting.)
            cursor.execute("SET LOCAL enable_sort TO DEFAULT")
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # until the commit
        yield


def _lock_timed_out(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"  # lock_not_available


@dataclass
class Dropped:
    days: list[date]
    events: int = 0
    sessions: int = 0
    seconds: float = 0.0  # the drop's transaction, from its first statement to its commit


def partitions_drop(*, before: datetime, counted_through: int) -> Dropped:
    """Drop the partitions that end at or before ``before`` and whose every row the rollups
    have counted (ids up to ``counted_through``), with the sessions whose last event they held.
    Stops at the first partition not yet counted: a later one holds later events."""
    detached_drop()  # what a run stopped between its detach and its drop left
    days = []
    for day in partition_days():
        if day_start(day + timedelta(days=1)) > before:
            break
        if _newest_id(day) > counted_through:
            break
        days.append(day)
    if not days:
        return Dropped([])
    return _drop(days)


def _newest_id(day: date) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {partition_name(day)}")
        return cursor.fetchone()[0]


def _drop(days: list[date]) -> Dropped:
    """Detach the days while holding the table (catalog work only), then drop them after: the
    files go at the drop's commit, gigabytes at a time, and the table is not held for that
    (47 days of 10 million events: 3.75 s held when dropped in place)."""
    names = [partition_name(day) for day in days]
    started = time_module.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # The planner's statistics count the rows without reading them (an estimate).
            cursor.execute(
                "SELECT coalesce(sum(greatest(reltuples, 0)), 0)::bigint FROM pg_class "
                "WHERE relname = ANY(%s)",
                [names],
            )
            events = cursor.fetchone()[0]
            # Checks deferred to the commit (the project key) are run now: PostgreSQL will not
            # detach a table with some pending, as when the caller's transaction wrote its rows.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name in names:
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
    except OperationalError as exc:
        if not _lock_timed_out(exc):
            raise
        return Dropped([])
    seconds = round(time_module.monotonic() - started, 3)
    detached_drop()
    ended = _sessions_ended_before(day_start(days[-1] + timedelta(days=1)))
    return Dropped(days, events, ended, seconds)


def detached_drop() -> None:
    """Drop the days detached from the event table: these, and any a run that stopped between
    the detach and the drop left behind."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
            [_NAME.pattern],
        )
        names = [name for (name,) in cursor.fetchall()]
        if names:
            cursor.execute(f"DROP TABLE {', '.join(names)}")


def _sessions_ended_before(end: datetime) -> int:
    """Sessions whose newest event (``last_seen``) is before ``end``: every event of theirs was
    in a dropped partition, or is in the default one and past retention by its own rule. In its
    own transaction, after the drop: the event table is not held while the sessions are read.
    A batch ingesting a new event of one meanwhile either goes first (and the session is kept,
    its last_seen now recent) or makes the session afresh."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM errorsink_session WHERE last_seen < %s", [end])
        return cursor.rowcount
