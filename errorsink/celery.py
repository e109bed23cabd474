"""The Celery application: the worker runs the ingest consumer and the periodic tasks."""

import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "errorsink.settings")

app = Celery("errorsink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class IngestConsumerStep(bootsteps.StartStopStep):
    """Runs the queue consumer inside every worker process, next to the task pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.running = []

    def start(self, worker) -> None:
        from django.conf import settings

        from errorsink.ingest.consumer import start_consumer_thread

        for _ in range(settings.ERRORSINK_INGEST_CONSUMERS):
            self.running.append(start_consumer_thread())

    def stop(self, worker) -> None:
        for consumer, _ in self.running:
            consumer.stop()
        for consumer, notifier in self.running:
            consumer.thread.join(timeout=30)
            notifier.stop()
        self.running.clear()


app.steps["worker"].add(IngestConsumerStep)
