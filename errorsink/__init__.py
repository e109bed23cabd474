"""errorsink's domain: models, the code catalog, ingest, services, selectors and tasks."""
