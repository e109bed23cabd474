"""`make faults`: every scenario on the real stack, a line of counts each; `--short` is the
form `make test` runs. Exits 1 if anything was lost or duplicated or a violation was seen."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--short", action="store_true", help="smaller counts, for make test")
    parser.add_argument("--only", action="append", default=[],
                        help="run only these scenarios (worker_sigkill, partition_boundary, "
                        "redis_kill, postgres_kill, hostile, scale_out); repeatable")  # fmt: skip
    args = parser.parse_args(argv)
    from faults.stack import prepare

    env = prepare()
    if args.short:
        # A killed worker's items come back after 6 s instead of 30: the same takeover, sooner.
        env["ERRORSINK_HEARTBEAT_TTL"] = "6"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    from faults import scenarios

    sizes = scenarios.SHORT if args.short else scenarios.Sizes()
    names = args.only or ["worker_sigkill", "partition_boundary", "redis_kill", "postgres_kill",
                          "hostile", "scale_out"]  # fmt: skip
    tallies = []
    print(f"{'scenario':<34} {'pushed':>8} {'stored':>8} {'dead':>6} {'lost':>5} {'dup':>4}  "
          "notes", flush=True)  # fmt: skip
    for name in names:
        started = time.monotonic()
        results = getattr(scenarios, name)(env, sizes)
        for result in results if isinstance(results, list) else [results]:
            result.notes["seconds"] = round(time.monotonic() - started)
            tallies.append(result)
            print(f"{result.scenario:<34} {result.pushed:>8} {result.stored:>8} "
                  f"{result.dead_lettered:>6} {result.lost:>5} {result.duplicated:>4}  "
                  f"{json.dumps(result.notes)}", flush=True)  # fmt: skip
    clean = all(result.clean for result in tallies)
    if not args.short and not args.only:  # make test runs the matrix as a test of its own
        clean = _access_matrix(env) and clean
    print("all clean: lost 0, duplicated 0, no violation" if clean else "NOT CLEAN", flush=True)
    return 0 if clean else 1


def _access_matrix(env: dict[str, str]) -> bool:
    """The access matrix (tests/test_access_matrix.py): anonymous, outsider, member and owner
    over every route the URL configuration has, pages, API and sockets."""
    import subprocess

    from faults.stack import CHECKOUT

    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_access_matrix.py", "-q",
                           "-s"], cwd=CHECKOUT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    lines = done.stdout.splitlines()
    summary = next((line for line in lines if "route x role cases" in line), "no summary")
    print(f"access matrix: {summary}; {lines[-1] if lines else ''}", flush=True)
    return done.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
