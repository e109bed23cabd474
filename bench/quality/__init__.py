"""Quality rollups (docs/quality.md) under load, in three parts, each beside a baseline measured
in the same run:

- `cost`: CPU seconds (user + system, of every process involved: PostgreSQL's server processes,
  Redis, the worker, this process) to ingest mixed items through the real queue and worker,
  then to bring the rollups up to date over them (`rollups_update` until the watermark covers
  them); both per 100,000 events, and their ratio.
- `lag`: a real worker (its queue readers) and beat (rollups every 2 s) while mixed items are
  pushed at 1,000 a second: how long after an event is seen committed the rollups' watermark
  covers it (and after its received_at).
- `scale`: `--events` events (10 million by default) over 30 days written straight into
  PostgreSQL, rows as ingest writes them (checked against the real normaliser), spread over one
  big project and small ones; the rollups computed over them; then the quality API, the project
  page and the projects list over real HTTP (Daphne), against a project of 10,000 events in the
  same database, and the quality reads' own time from EXPLAIN ANALYZE.

Run with `make bench` (or `python -m bench.quality [--events N] [--parts cost,lag,scale]`);
progress goes to stderr, the JSON to stdout. It has its own database (dropped at the end
unless `--keep`) and Redis number.
"""

from bench.quality.run import main

__all__ = ["main"]
