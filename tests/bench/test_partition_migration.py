"""The migration to daily partitions, run by its benchmark on a database of its own with
generated events: every event kept, every read unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devstack.processes import CHECKOUT


@pytest.mark.slow
def test_the_partition_migration_keeps_every_event_and_every_read(service_env):
    result = subprocess.run(
        [sys.executable, "-m", "bench.partition_migration", "--events", "20000"],
        env=service_env, cwd=CHECKOUT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout[result.stdout.rindex("\n{") :])
    assert figures["every_event_kept"] and figures["every_read_unchanged"], figures
    # Generated over 30 days: a partition for each day of them, three ahead, the default.
    assert figures["events"] > 15_000 and figures["partitions"] >= 34, figures
