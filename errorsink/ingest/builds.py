"""The build of each session, for the rows that name none.

A browser SDK's warning does not know the agent's build, and "most degraded calls are on build
X" needs it: such a row takes the build a row of its batch gives the session, else the one the
session has stored. Stored once, a row's build never changes, so every figure computed from the
events is the same however often it is computed.

Each worker process remembers the builds it has seen (a session's build is set by its runner
and rarely changes), so a batch asks PostgreSQL only for the sessions it has not seen with one:
in steady traffic no query at all, where one query per batch was a tenth of ingest's time. A
session whose build another process stored later than this one remembered keeps the remembered
one here; builds are per deployment, so that is a session that changed builds mid-call.
"""

from __future__ import annotations

import threading

import orjson
from django.db import connection

# (project id, session id) -> build id
Builds = dict[tuple[str, str], str]

# Sessions remembered per process: at 200 bytes each, 20 MB. Past it the memory starts again,
# which costs one query per batch until the live sessions are seen again.
REMEMBERED_MAX = 100_000

_STORED = """
SELECT s.project_id::text, s.session_id, s.build_id FROM errorsink_session s
JOIN (SELECT (pair->>0)::uuid AS project_id, pair->>1 AS session_id
      FROM json_array_elements(%s::json) AS pair) AS k
  ON s.project_id = k.project_id AND s.session_id = k.session_id
WHERE s.build_id <> ''
"""


class SessionBuilds:
    """The builds this process has seen, and a lookup of the others."""

    def __init__(self, limit: int = REMEMBERED_MAX) -> None:
        self._known: Builds = {}
        self._limit = limit
        self._lock = threading.Lock()  # the queue reader threads share one memory

    def of(self, wanted: set[tuple[str, str]], given: Builds) -> Builds:
        """The builds of the ``wanted`` sessions, with ``given`` (what the batch itself says)
        taking precedence; those neither knows are read from the sessions table."""
        self.remember(given)
        known = self._known
        builds = {key: known[key] for key in wanted if key in known}
        missing = wanted - builds.keys()
        if missing:
            stored = _stored(missing)
            self.remember(stored)
            builds |= stored
        return builds | given

    def remember(self, builds: Builds) -> None:
        if not builds:
            return
        with self._lock:
            if len(self._known) + len(builds) > self._limit:
                self._known = {}
            self._known.update(builds)


def _stored(keys: set[tuple[str, str]]) -> Builds:
    with connection.cursor() as cursor:
        cursor.execute(_STORED, [orjson.dumps(sorted(keys)).decode()])
        return {(project, session): build for project, session, build in cursor.fetchall()}


SESSION_BUILDS = SessionBuilds()
