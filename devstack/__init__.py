"""Development-only helpers: the embedded PostgreSQL and Redis, the stack runner behind
`make run`, the process command lines and helpers that tests and benchmarks share, and the
pytest plugin. Nothing in errorsink/, dashboard/ or config/ imports this package."""
