"""The build of each session, for the rows that name none.

A browser SDK's warning does not know the agent's build, and "most degraded calls are on build
X" needs it: such a row takes the build a row of its batch gives the session, else the one the
session has stored. Stored once, a row's build never changes, so every figure computed from the
events is the same however often it is computed.

Each worker process remembers the builds it has seen (a session's build is set by its runner
and rarely changes), so a batch asks PostgreSQL only for the sessions it has not seen with one:
in steady traffic no query at all, where one query per batch was a tenth of ingest's time. What
a batch says is remembered once it committed (a batch rolled back, or a row refused, teaches
nothing), and the memory starts again every MAX_AGE_SECONDS: a session whose build another
process stored since, or a session id a producer reuses after its old session was deleted, is
read again within that.
"""

from __future__ import annotations

import threading
import time

import orjson
from django.db import connection

# (project id, session id) -> build id
Builds = dict[tuple[str, str], str]

# Sessions remembered per process: at 200 bytes each, 20 MB. Past it the memory starts again,
# which costs one query per batch until the live sessions are seen again.
REMEMBERED_MAX = 100_000
# How long the memory is trusted: its staleness is bounded by this, and a live session's build
# costs one read per this long.
MAX_AGE_SECONDS = 600.0

_STORED = """
SELECT s.project_id::text, s.session_id, s.build_id FROM errorsink_session s
JOIN (SELECT (pair->>0)::uuid AS project_id, pair->>1 AS session_id
      FROM json_array_elements(%s::json) AS pair) AS k
  ON s.project_id = k.project_id AND s.session_id = k.session_id
WHERE s.build_id <> ''
"""


class SessionBuilds:
    """The builds this process has seen, and a lookup of the others."""

    def __init__(self, limit: int = REMEMBERED_MAX, max_age: float = MAX_AGE_SECONDS) -> None:
        self._known: Builds = {}
        self._limit = limit
        self._max_age = max_age
        self._started = time.monotonic()
        self._lock = threading.Lock()  # the queue reader threads share one memory

    def of(self, wanted: set[tuple[str, str]], given: Builds) -> Builds:
        """The builds of the ``wanted`` sessions, with ``given`` (what the batch itself says)
        taking precedence; those neither knows are read from the sessions table."""
        known = self._current()
        builds = {key: known[key] for key in wanted - given.keys() if key in known}
        missing = wanted - given.keys() - builds.keys()
        if missing:
            stored = _stored(missing)
            self.remember(stored)
            builds |= stored
        return builds | given

    def remember(self, builds: Builds) -> None:
        if not builds:
            return
        with self._lock:
            if len(self._current()) + len(builds) > self._limit:
                self._known = {}
            self._known.update(builds)

    def _current(self) -> Builds:
        if time.monotonic() - self._started > self._max_age:
            self._known, self._started = {}, time.monotonic()
        return self._known


def _stored(keys: set[tuple[str, str]]) -> Builds:
    with connection.cursor() as cursor:
        cursor.execute(_STORED, [orjson.dumps(sorted(keys)).decode()])
        return {(project, session): build for project, session, build in cursor.fetchall()}


SESSION_BUILDS = SessionBuilds()
