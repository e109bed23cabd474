"""The Celery application: the worker runs the ingest consumer and the periodic tasks."""

import os
from pathlib import Path

# Imported here, once: beat sends its due tasks the moment it starts, and a first, lazy import
# of the result backend while another import of it is under way fails as a circular import.
import celery.backends.redis  # noqa: F401
from celery import Celery, bootsteps
from celery.beat import PersistentScheduler

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


class StateDirScheduler(PersistentScheduler):
    """Beat's default scheduler, which first creates the folder its schedule file lives in:
    settings only name that folder, and in a container nothing else has made it."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
