"""Database reads for live pages, on threads of their own, counted.

Channels runs `database_sync_to_async` calls on one thread per process, the thread Django's
sync views (the API, the pages) also run on: under load, a live push's row fetch queued behind
API reads and the other pages' redraws. Live reads run here instead, on a small pool whose
threads each keep one connection open, so they wait for PostgreSQL and nothing else.

Every query run here is counted (`queries_run`): the hub logs the count per push, the load
benchmark reads it, and a test holds it equal for 1 and for 50 open pages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection

# Enough that a month of quality figures being read never holds up a push's rows, few enough
# that every web process's connections stay a handful.
THREADS = 4
SLOW_SECONDS = 0.1

log = logging.getLogger(__name__)

_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="live-db")
_count_lock = threading.Lock()
_queries = 0


def queries_run() -> int:
    """Queries run by live reads in this process so far."""
    return _queries


def _counted(execute, sql, params, many, context):
    global _queries
    with _count_lock:
        _queries += 1
    return execute(sql, params, many, context)


def _run[T](fn: Callable[..., T], args: tuple, kwargs: dict, submitted: float) -> T:
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(_counted):
            return fn(*args, **kwargs)
    except (DatabaseError, InterfaceError):
        connection.close()  # PostgreSQL restarted or the link broke: the next read reconnects
        raise
    finally:
        if not settings.ERRORSINK_LIVE_DB_KEEP_CONNECTIONS:
            connection.close()  # in-process tests: none may outlive the test database
        _note_if_slow(fn, submitted, started)


def _note_if_slow(fn: Callable, submitted: float, started: float) -> None:
    """A read that held its pages up is logged, with how much of it was waiting for a thread."""
    ended = time.perf_counter()
    if ended - submitted > SLOW_SECONDS:
        log.info("live read %s took %.0f ms, %.0f of them waiting for a thread",
                 getattr(fn, "__qualname__", fn), (ended - submitted) * 1000,
                 (started - submitted) * 1000)  # fmt: skip


async def live_read[T](fn: Callable[..., T], /, *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` on the live pool: Django's ORM is safe there (no event loop)."""
    loop = asyncio.get_running_loop()
    submitted = time.perf_counter()
    return await loop.run_in_executor(_pool, functools.partial(_run, fn, args, kwargs, submitted))
