"""The `errorsink` command: a client of the HTTP API for terminals and scripts (no Django)."""
