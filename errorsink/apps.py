from django.apps import AppConfig


class ErrorsinkConfig(AppConfig):
    name = "errorsink"
    default_auto_field = "django.db.models.BigAutoField"
