from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from errorsink.demo import (
    DEFAULT_HOURS,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DEMO_PROJECT_NAME,
    MAX_HOURS,
    MAX_SESSIONS,
    DemoProjectUnclear,
    demo_project_pick,
    demo_push,
)
from errorsink.ingest.queue import queue_name


class Command(BaseCommand):
    help = (
        "Push a realistic day of demo sessions onto the ingest queue, as runner pods and the "
        "Telnyx SDK would: four builds in sequence (the third clearly worse), network warnings "
        "with metrics, errors, and every kind of hang-up. The running worker stores them; the "
        "quality figures follow within seconds. Without --project the data goes to the only "
        f"project, or, when there are several, to one named {DEMO_PROJECT_NAME!r} (created, "
        "owned by every superuser, if missing). Event ids come from the seed: running again "
        "with the same seed stores nothing new; another seed adds other sessions."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", metavar="ID", help="the project's id")
        parser.add_argument(
            "--hours",
            type=int,
            default=DEFAULT_HOURS,
            help=f"spread the sessions over this many past hours (default {DEFAULT_HOURS})",
        )
        parser.add_argument(
            "--sessions",
            type=int,
            default=DEFAULT_SESSIONS,
            help=f"how many sessions (default {DEFAULT_SESSIONS})",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"which sessions (default {DEFAULT_SEED}); the same seed gives the same ones",
        )

    def handle(self, *args, project, hours, sessions, seed, **options) -> None:
        if not 1 <= hours <= MAX_HOURS:
            raise CommandError(f"--hours must be 1 to {MAX_HOURS}, got {hours}")
        if not 1 <= sessions <= MAX_SESSIONS:
            raise CommandError(f"--sessions must be 1 to {MAX_SESSIONS}, got {sessions}")
        try:
            chosen, created = demo_project_pick(project_id=project)
        except DemoProjectUnclear as exc:
            raise CommandError(str(exc)) from None
        made = "created" if created else "existing"
        self.stdout.write(
            f"Demo data for the {made} project {chosen.name!r} ({chosen.id}), seed {seed}"
        )
        summary = demo_push(
            project=chosen, hours=hours, sessions=sessions, seed=seed, progress=self._progress
        )
        self._report(summary, chosen)

    def _progress(self, pushed: int, total: int) -> None:
        self.stdout.write(f"  pushed {pushed:,} of {total:,} items onto {queue_name()!r}")

    def _report(self, summary, project) -> None:
        write = self.stdout.write
        types = ", ".join(f"{count:,} {kind}" for kind, count in summary.item_types.items())
        write(
            f"Pushed {summary.items:,} items for {summary.sessions:,} sessions over the last "
            f"{summary.hours} hours: {types}."
        )
        builds = ", ".join(
            f"{build} (the worse one)" if build == summary.regression else build
            for build in summary.builds
        )
        write(f"Builds, oldest first: {builds}.")
        if summary.already_stored:
            write(
                f"{summary.already_stored:,} events of seed {summary.seed} were stored before; "
                "the worker skips those copies (use another --seed for more sessions)."
            )
        if summary.workers_alive:
            write("The worker stores them in seconds; the quality figures follow within seconds.")
        else:
            write(
                self.style.WARNING(
                    "No ingest worker is running: the items wait in the queue until one starts "
                    "(make run)."
                )
            )
        path = reverse("project", args=[project.id])
        base = settings.ERRORSINK_PUBLIC_URL.rstrip("/")
        write(self.style.SUCCESS(f"Open {base}{path}"))
