"""Test settings: the same real services, but another Redis database and a test PostgreSQL
database, so a test run never touches the data of a dev stack that is up at the same time."""

import os

os.environ.setdefault("ERRORSINK_REDIS_DB", "15")

from config.settings import *  # noqa: E402,F403
