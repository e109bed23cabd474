"""Test settings: the same real services, but another Redis database and a test PostgreSQL
database, so a test run never touches the data of a dev stack that is up at the same time.
The servers a test starts (Daphne, Celery) run with these settings too."""

import os
import sys

# Under pytest-xdist each worker (gw0, gw1, ...) has its own Redis database, as pytest-django
# gives it its own PostgreSQL database: queues, dead letters and the channel layer never meet.
# Not 12 to 14: the benchmarks use those.
# Set, not defaulted, for a worker: it inherits the environment of the process that started it,
# which has already chosen 15 for itself.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    os.environ["ERRORSINK_REDIS_DB"] = str([15, 11, 10, 9][int(_WORKER.removeprefix("gw")) % 4])
else:
    os.environ.setdefault("ERRORSINK_REDIS_DB", "15")

from config.settings import *  # noqa: E402,F403

# The tests' own process keeps a connection per thread, as pytest-django expects (a test
# swaps the connection's settings to play an outage, and many threads of its own never hand a
# connection back to a pool). The servers the tests start (Daphne, Celery: pytest is not
# imported there) lend theirs from a pool, as in production.
if "pytest" in sys.modules:
    DATABASES["default"] = {**DATABASES["default"], "CONN_MAX_AGE": 60, "OPTIONS": {}}  # noqa: F405

# alice, bob and charlie are made for most tests: PBKDF2's million rounds cost about a second
# a test; a server started by the tests checks the same hashes, so it runs these settings too.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Live reads in a test's own process close their connection after each read: pool threads
# holding one open would keep the test database from being dropped at the end.
ERRORSINK_LIVE_DB_KEEP_CONNECTIONS = False
