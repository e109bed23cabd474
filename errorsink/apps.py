from django.apps import AppConfig


class ErrorsinkConfig(AppConfig):
    name = "errorsink"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from errorsink.projects.grants import grants_signals_connect

        grants_signals_connect()
