"""`make bench`: every benchmark, each in its own process (each configures Django for its own
database), printing its JSON; ratios are against a baseline measured in the same run, since
these machines are noisy and absolute figures mean little."""

import subprocess
import sys

BENCHMARKS = [
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
]


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module]).returncode != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
