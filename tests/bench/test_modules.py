"""The benchmarks are not run by the suite (`make bench` is), but they must stay importable
after a refactor: an import error would only show on the next `make bench`."""

import importlib

import pytest

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    "module",
    [
        "bench.__main__",
        "bench.ingest",
        "bench.retention",
        "bench.partition_migration",
        "bench.project_purge",
        "bench.live_latency",
        "bench.quality",
        "bench.issues",
        "bench.alerts",
        "bench.sentry_ingest",
        "bench.front_door",
        "bench.scale_out",
        "bench.load",
    ],
)
def test_it_imports_every_benchmark(module):
    benchmark = importlib.import_module(module)
    assert callable(benchmark.main)
