"""The front door: the HTTP routes that accept events (errorsink's own, Sentry's), answered in
the event loop without the database (docs/architecture.md, "The front door")."""
