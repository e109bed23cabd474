"""The queue readers inside a real Celery worker process: crash safety and outages."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bench.items import mixed_items
from errorsink.ingest import reader as reader_module
from errorsink.ingest.queue import enqueue, processing_prefix, queue_name, redis_client
from errorsink.ingest.reader import QueueReader
from errorsink.sessions.models import Event
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
def test_it_stores_exactly_every_item_when_the_worker_is_killed_mid_run(
    clean_queue, project, private_stack
):
    items = mixed_items(50_000, str(project.id))
    worker = private_stack.worker(name="first")
    for offset in range(0, len(items), 1000):
        enqueue(items[offset : offset + 1000])
    wait_until(lambda: Event.objects.count() > 5_000, 120, "the first batches")

    private_stack.kill(worker)  # SIGKILL: no shutdown code runs
    orphaned = sum(
        clean_queue.llen(key) for key in clean_queue.scan_iter(processing_prefix() + "*")
    )
    stored_at_kill = Event.objects.count()
    assert stored_at_kill < 50_000, "the run finished before the kill; nothing was tested"

    restarted = private_stack.worker(name="second")
    try:
        wait_until(lambda: Event.objects.count() >= 50_000, 180, "all 50,000 events")
        wait_until(lambda: not list(clean_queue.scan_iter(processing_prefix() + "*")), 60,
                   "the processing lists to empty")  # fmt: skip
    finally:
        private_stack.stop(restarted)

    assert Event.objects.count() == 50_000
    assert Event.objects.values("event_id").distinct().count() == 50_000
    print(f"killed with {stored_at_kill} stored and {orphaned} items in processing lists")


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@127.0.0.1:{port}"))


@pytest.mark.slow
def test_it_holds_items_while_postgres_is_down_and_logs_the_outage_once(
    clean_queue, project, service_env, private_stack
):
    proxy = CuttableProxy(urlsplit(service_env["DATABASE_URL"]).port)
    proxy.restore()
    env = {**service_env, "DATABASE_URL": _with_port(service_env["DATABASE_URL"], proxy.port)}
    worker = private_stack.worker(DATABASE_URL=env["DATABASE_URL"])
    try:
        proxy.cut()
        items = [json.dumps({"type": "agent_error", "message": f"m{n}", "session_id": "s",
                             "project_id": str(project.id)}) for n in range(200)]  # fmt: skip
        enqueue(items[:100])
        wait_until(lambda: "PostgreSQL unreachable" in private_stack.log_text(worker), 30,
                   "the worker to meet the outage")  # fmt: skip
        enqueue(items[100:])
        wait_until(lambda: clean_queue.llen(queue_name()) == 0, 30, "the readers to take them")
        assert Event.objects.count() == 0  # taken, held, not stored and not dropped
        proxy.restore()
        wait_until(lambda: Event.objects.count() == 200, 60, "the held items")
    finally:
        private_stack.stop(worker)
        proxy.cut()
    log = private_stack.log_text(worker)
    assert log.count("PostgreSQL unreachable") == 1
    assert "PostgreSQL reachable again" in log


def test_it_backs_off_while_redis_is_down_and_loses_nothing(
    clean_queue, project, monkeypatch, caplog
):
    kwargs = clean_queue.connection_pool.connection_kwargs
    proxy = CuttableProxy(kwargs["port"])
    proxy.restore()
    # No client-side retries: the outage must reach the reader's own back-off.
    proxied = redis.Redis(host="127.0.0.1", port=proxy.port, db=kwargs["db"], socket_timeout=2,
                          retry=Retry(NoBackoff(), 0))  # fmt: skip
    monkeypatch.setattr(reader_module, "redis_client", lambda: proxied)
    reader = QueueReader(batch_size=50)
    enqueue([json.dumps({"type": "agent_error", "message": f"m{n}", "session_id": "s",
                         "project_id": str(project.id)}) for n in range(120)])  # fmt: skip
    assert reader.run_once() == 50
    proxy.cut()
    threading.Timer(2.0, proxy.restore).start()

    while redis_client().llen(reader.queue.name):  # blocks in back-off until Redis is back
        reader.run_once()

    assert Event.objects.count() == 120
    messages = [record.getMessage() for record in caplog.records]
    assert sum("Redis unreachable" in message for message in messages) == 1
    assert any("Redis reachable again" in message for message in messages)
    proxy.cut()
