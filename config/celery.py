"""The Celery application: the worker runs the queue readers and the periodic tasks."""

import gc
import os
import sys
from pathlib import Path

# Imported here, once: beat sends its due tasks the moment it starts, and a first, lazy import
# of the result backend while another import of it is under way fails as a circular import.
import celery.backends.redis  # noqa: F401
import click
from celery import Celery, bootsteps
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("errorsink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class QueueReaderStep(bootsteps.StartStopStep):
    """Runs the queue readers inside every worker process, next to the task pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.running = None

    def start(self, worker) -> None:
        from django.conf import settings

        from errorsink.ingest.reader import queue_readers_start

        # The readers share the process with beat's tasks (a thread pool): with Python's 5 ms
        # switch interval, a reader back from PostgreSQL waited up to 5 ms per statement for
        # the GIL while a task ran Python, and batches in the 250 ms after each 2-second tick
        # took over 40 ms twice as often (docs/benchmarks.md). Daphne does the same.
        sys.setswitchinterval(0.0005)
        # Everything loaded by now (Django, Celery, every module: 215,000 objects) lives as long
        # as the process: out of the collector's sight, a full collection no longer walks it all
        # while the readers wait for the GIL (it took 150 to 210 ms; docs/benchmarks.md).
        gc.freeze()
        if settings.ERRORSINK_QUEUE_READERS > 0:
            self.running = queue_readers_start(count=settings.ERRORSINK_QUEUE_READERS)

    def stop(self, worker) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


app.steps["worker"].add(QueueReaderStep)

app.user_options["worker"].add(click.Option(
    ["--embedded-beat"], is_flag=True, default=False,
    help="Run beat as a thread of this worker (one worker only): the single-machine stack "
    "saves a process; compose runs beat on its own.",
))  # fmt: skip


class EmbeddedBeatStep(bootsteps.StartStopStep):
    """Beat in a thread of the worker, not Celery's -B (a forked process that costs as much
    memory as a worker of its own)."""

    def __init__(self, worker, embedded_beat: bool = False, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.enabled = embedded_beat
        self.service = None

    def start(self, worker) -> None:
        from celery.beat import EmbeddedService
        from django.conf import settings

        self.service = EmbeddedService(
            worker.app, thread=True, schedule_filename=settings.CELERY_BEAT_SCHEDULE_FILENAME,
            scheduler_cls=settings.CELERY_BEAT_SCHEDULER,
        )  # fmt: skip
        self.service.start()

    def stop(self, worker) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None


app.steps["worker"].add(EmbeddedBeatStep)


class StateDirScheduler(PersistentScheduler):
    """Beat's default scheduler, which first creates the folder its schedule file lives in:
    settings only name that folder, and in a container nothing else has made it."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
