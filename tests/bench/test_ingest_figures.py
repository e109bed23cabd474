"""The ingest benchmark's comparisons: each figure is the median of the rounds' ratios, and the
CPU figure is taken from PostgreSQL's processes as well as the worker's."""

import pytest

from bench.cpu import process_cpu_seconds, program_cpu_seconds
from bench.ingest import compared, medians


def _measured(events_per_second: int, cpu_seconds: float, copy_rows_per_second: int) -> dict:
    return {
        "end_to_end": {"events_per_second": events_per_second, "cpu_seconds": cpu_seconds},
        "raw_copy": {"rows_per_second": copy_rows_per_second},
        "ratio_to_raw_copy": events_per_second / copy_rows_per_second,
    }


@pytest.mark.pure
def test_each_figure_is_the_median_of_the_rounds_ratios():
    rounds = [
        {"on": _measured(900, 12.0, 2000), "off": _measured(1000, 10.0, 2000)},
        {"on": _measured(800, 11.0, 1000), "off": _measured(1000, 11.0, 2000)},
        {"on": _measured(1000, 10.0, 2000), "off": _measured(1000, 12.5, 2000)},
    ]
    figures = compared(rounds, "on", "off")
    assert figures["events_per_second"] == {"median": 0.9, "rounds": [0.9, 0.8, 1.0]}
    # Events per CPU second: 10/12, 11/11, 12.5/10.
    assert figures["events_per_cpu_second"] == {"median": 1.0, "rounds": [0.833, 1.0, 1.25]}
    assert figures["ratio_to_raw_copy"] == {"median": 1.0}  # 0.9, 1.6, 1.0
    assert figures["raw_copy"] == {"median": 1.0}  # 1.0, 0.5, 1.0


@pytest.mark.django_db
def test_postgres_cpu_is_read_from_the_running_server(django_db_blocker):
    from django.db import connection

    if not program_cpu_seconds("postgres"):
        pytest.skip("PostgreSQL runs on another machine (DATABASE_URL)")
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
        before = process_cpu_seconds(backend)
        # Enough work for the server to use a few clock ticks of CPU.
        cursor.execute("SELECT count(*) FROM generate_series(1, 3000000)")
        after = process_cpu_seconds(backend)
        # This connection's own backend: the whole server's sum also drops whenever another
        # connection (another test worker's) ends meanwhile, which made the test flaky.
        assert after > before
        assert program_cpu_seconds("postgres") >= after


@pytest.mark.pure
def test_each_setups_figures_are_medians_over_the_rounds():
    rounds = [{"on": _measured(900, 12.5, 2000)}, {"on": _measured(800, 10.0, 1000)},
              {"on": _measured(1000, 10.0, 2500)}]  # fmt: skip
    # COUNT (100,000) events per CPU second: 8,000, 10,000, 10,000; ratios 0.45, 0.8, 0.4.
    assert medians(rounds, "on") == {
        "events_per_second": 900,
        "events_per_cpu_second": 10_000,
        "raw_copy_rows_per_second": 2000,
        "ratio_to_raw_copy": 0.45,
    }
