"""PostgreSQL session advisory locks: one periodic job of a kind at a time, across workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def advisory_lock(key: int) -> Iterator[bool]:
    """Takes the lock ``key`` unless another session holds it; yields whether it was taken, and
    releases it on the way out. Never waits: the job that finds it taken skips its run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        taken = cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
