"""Test settings: the same real services, but another Redis database and a test PostgreSQL
database, so a test run never touches the data of a dev stack that is up at the same time.
The servers a test starts (Daphne, Celery) run with these settings too."""

import os

os.environ.setdefault("ERRORSINK_REDIS_DB", "15")

from config.settings import *  # noqa: E402,F403

# alice, bob and charlie are made for most tests: PBKDF2's million rounds cost about a second
# a test; a server started by the tests checks the same hashes, so it runs these settings too.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
