"""errorsink: real-time error observability for voice and chat agent sessions.

The Celery app is loaded by the Django app config (errorsink.apps), not here, so that the
`errorsink` command-line client starts without importing Celery.
"""
