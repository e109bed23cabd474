"""`make bench`: every benchmark in one run; each prints its JSON, ratios against a baseline
measured in the same run (these machines are noisy, so absolute figures mean little)."""

import importlib.util

from bench import ingest


def main() -> None:
    ingest.main()
    if importlib.util.find_spec("bench.live_latency") is not None:
        from bench import live_latency

        live_latency.main()


if __name__ == "__main__":
    main()
