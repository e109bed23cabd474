from django.apps import AppConfig


class ErrorsinkConfig(AppConfig):
    name = "errorsink"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Makes the configured Celery app current in every Django process, so that
        # task.delay() from web requests uses the Redis broker.
        from errorsink.celery import app  # noqa: F401
