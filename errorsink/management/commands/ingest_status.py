from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from errorsink.ingest.queue import (
    dead_letter_name,
    dead_letters_dropped_name,
    heartbeat_key,
    processing_prefix,
    queue_name,
    redis_client,
)
from errorsink.sessions.models import Event


def ingest_status() -> dict:
    """Queue depth, dead letters, per-worker processing lists and the last minute's intake."""
    client = redis_client()
    processing = {}
    for key in client.scan_iter(match=processing_prefix() + "*", count=100):
        worker_id = key.decode().removeprefix(processing_prefix())
        alive = bool(client.exists(heartbeat_key(worker_id)))
        processing[worker_id] = {"items": client.llen(key), "alive": alive}
    since = timezone.now() - timedelta(minutes=1)
    return {
        "queue": queue_name(),
        "queue_depth": client.llen(queue_name()),
        "dead_letters": client.llen(dead_letter_name()),
        "dead_letters_dropped": int(client.get(dead_letters_dropped_name()) or 0),
        "processing": processing,
        "stored_last_minute": Event.objects.filter(received_at__gte=since).count(),
    }


class Command(BaseCommand):
    help = "Show the ingest queue depth, dead letters, processing lists and recent intake."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args, json: bool, **options) -> None:
        status = ingest_status()
        if json:
            import orjson

            self.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
            return
        self.stdout.write(f"queue {status['queue']!r}: {status['queue_depth']} waiting")
        self.stdout.write(
            f"dead letters ({dead_letter_name()!r}): {status['dead_letters']}"
            f" ({status['dead_letters_dropped']} dropped when the list was full)"
        )
        if not status["processing"]:
            self.stdout.write("processing lists: none")
        for worker_id, info in status["processing"].items():
            state = "alive" if info["alive"] else "DEAD (will be requeued)"
            self.stdout.write(f"processing {worker_id}: {info['items']} items, worker {state}")
        self.stdout.write(f"events stored in the last minute: {status['stored_last_minute']}")
