"""A Celery worker as `make run` starts it, but ingesting as errorsink did before issues: no
fingerprints, no issue counters. Only the ingest benchmark starts it, to measure what grouping
costs in the same run; the product has no such switch.

    python -m bench.worker_without_grouping <the worker's celery arguments>
"""

from __future__ import annotations

import sys


def _without_grouping() -> None:
    from errorsink.ingest import persist, rows

    rows.event_grouping = lambda event: (None, None)
    persist.issues_added = lambda rows, session_builds=None: None


if __name__ == "__main__":
    import django
    from celery.__main__ import main

    django.setup()
    _without_grouping()
    sys.argv = ["celery", *sys.argv[1:]]
    sys.exit(main())
