"""`python -m bench.quality`: the parts asked for, one after another, and their JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import bench.quality
from bench.quality.common import (
    COST_EVENTS,
    DATABASE,
    LAG_RATE,
    LAG_SECONDS,
    PARTS,
    REQUESTS,
    SCALE_EVENTS,
    database_drop,
    environment,
    progress,
)
from bench.quality.cost import measure_cost
from bench.quality.lag import measure_lag
from bench.quality.scale import measure_scale

# ---------------------------------------------------------------------------------------------


COUNTS = [
    ("--events", SCALE_EVENTS, "events generated for the scale part"),
    ("--cost-events", COST_EVENTS, "items ingested for the cost part"),
    ("--lag-seconds", LAG_SECONDS, "seconds of pushing at 1,000 items/s for the lag part"),
    ("--requests", REQUESTS, "timed requests of each kind in the scale part"),
]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description=bench.quality.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, default, meaning in COUNTS:
        parser.add_argument(flag, type=int, default=default, help=f"{meaning} ({default:,})")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--plans", type=Path, help="write the quality reads' plans to this file")
    parser.add_argument("--keep", action="store_true", help=f"leave the database {DATABASE}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {', '.join(sorted(unknown))}; parts are {PARTS}")
    env = environment()
    result: dict = {"benchmark": "quality", "cpus": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as logdir:
            result |= _run_parts(env, Path(logdir), parts, args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_drop(env["DATABASE_URL"])
    print(json.dumps(result, indent=2, default=str))
    sys.stdout.flush()
    return result


def _run_parts(env: dict, logdir: Path, parts: list[str], args: argparse.Namespace) -> dict:
    from errorsink.projects.services import project_create

    result = {}
    project_id = str(project_create(name="bench quality live").id)
    if "cost" in parts:
        progress(f"cost: ingesting {args.cost_events:,} items, then the rollups")
        result["cost"] = measure_cost(env, logdir, project_id, args.cost_events)
    if "lag" in parts:
        progress(f"lag: {args.lag_seconds} s at {LAG_RATE:,} items/s with worker and beat")
        result["lag"] = measure_lag(env, logdir, project_id, args.lag_seconds)
    if "scale" in parts:
        progress(f"scale: {args.events:,} events over 30 days")
        result["scale"] = measure_scale(env, logdir, args.events, args.requests, args.plans)
    return result


if __name__ == "__main__":
    main()
