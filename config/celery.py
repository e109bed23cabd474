"""The Celery application: the worker runs the ingest consumer and the periodic tasks."""

import os
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("errorsink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class IngestConsumerStep(bootsteps.StartStopStep):
    """Runs the queue consumer inside every worker process, next to the task pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.running = None

    def start(self, worker) -> None:
        from django.conf import settings

        from errorsink.ingest.consumer import start_consumers

        if settings.ERRORSINK_INGEST_CONSUMERS > 0:
            self.running = start_consumers(count=settings.ERRORSINK_INGEST_CONSUMERS)

    def stop(self, worker) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


app.steps["worker"].add(IngestConsumerStep)


@beat_init.connect
def _create_schedule_folder(sender, **kwargs) -> None:
    """Beat keeps its schedule in the state folder, which settings only name."""
    from django.conf import settings

    Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
