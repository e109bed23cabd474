"""`make faults` in its short form, on its own services: every scenario must end with nothing
lost, nothing duplicated and no violation (an API 500, a worker crash, a dashboard that missed
an event, an accepted item dead-lettered)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack.processes import CHECKOUT

pytestmark = pytest.mark.slow


def test_the_short_fault_suite_loses_and_duplicates_nothing():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run([sys.executable, "-m", "faults", "--short"], cwd=CHECKOUT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    table = [line for line in done.stdout.splitlines() if not line.startswith("20")]
    print("\n".join(table))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = [line for line in table if line and not line.startswith(("scenario", "all clean"))]
    # sigkill, across midnight, redis, postgres, hostile x3, scale-out
    assert len(rows) == 8, table
    for row in rows:
        lost, duplicated = row.split("{")[0].split()[-2:]
        assert (lost, duplicated) == ("0", "0"), row
