"""The Celery application: the worker runs the ingest consumer and the periodic tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "errorsink.settings")

app = Celery("errorsink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
