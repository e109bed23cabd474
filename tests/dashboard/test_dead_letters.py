"""Dead letters for a project's owners: grouped by reason, escaped, requeued or discarded, and
never another project's. Against the real Redis, and the real reader for a requeue."""

from __future__ import annotations

import orjson
import pytest
from django.core.cache import cache
from django.urls import reverse

from errorsink.connections import redis_client
from errorsink.ingest.queue import dead_letter, dead_letter_name, queue_name
from errorsink.ingest.reader import QueueReader
from errorsink.projects.services import project_create
from errorsink.sessions.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_lists():
    for name in (dead_letter_name(), queue_name()):
        redis_client().delete(name)
    cache.clear()
    yield
    for name in (dead_letter_name(), queue_name()):
        redis_client().delete(name)


def _bury(item: dict | str, reason: str) -> bytes:
    text = item if isinstance(item, str) else orjson.dumps(item).decode()
    redis_client().rpush(dead_letter_name(), dead_letter(text.encode(), reason))
    return text.encode()


def _item(project, n: int, **fields) -> dict:
    return {"type": "session_error", "project_id": str(project.id), "event_id": f"dead-{n}",
            "session_id": "s", "code": "AGENT_HANDLER_FAILED", "message": f"m{n}",
            **fields}  # fmt: skip


@pytest.fixture
def buried(project, charlie):
    theirs = project_create(name="theirs", owner=charlie)
    for n in range(3):
        _bury(_item(project, n), f"rejected by the database: deadlock detected (pid {n})")
    _bury(_item(project, 9, message="<script>alert(1)</script>"), "field 'code' must be a string")
    _bury(_item(theirs, 1), "rejected by the database: deadlock detected (pid 7)")
    _bury("not json at all", "item is not valid JSON")
    return theirs


def _page(client, project) -> str:
    response = client.get(reverse("dead-letters", args=[project.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_owners_see_their_dead_letters_grouped_by_reason(client, alice, project, buried):
    client.force_login(alice)
    page = _page(client, project)
    assert "<strong>4</strong> in 2 reasons" in page
    assert '<span class="count">3</span> × rejected by the database: deadlock detected' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "not json at all" not in page and "theirs" not in page
    project_page = client.get(reverse("project", args=[project.id])).content.decode()
    assert "4 dead letters" in project_page


def test_when_each_reason_last_came_reads_as_every_time_on_the_dashboard(client, alice, project):
    item = orjson.dumps(_item(project, 1)).decode()
    redis_client().rpush(
        dead_letter_name(),
        orjson.dumps(
            {"reason": "from a 2026 outage", "item": item, "at": "2026-11-30T08:15:42.123456Z"}
        ),
    )
    redis_client().rpush(
        dead_letter_name(),
        orjson.dumps({"reason": "from another program", "item": item, "at": "<i>last week</i>"}),
    )
    client.force_login(alice)
    page = _page(client, project)
    assert '<time datetime="2026-11-30T08:15:42.123456+00:00"' in page
    assert ">2026-11-30 08:15:42 UTC</time>" in page
    # A time this program did not write is shown as it came, escaped.
    assert "Last on &lt;i&gt;last week&lt;/i&gt;." in page


def test_members_outsiders_and_anonymous_get_nothing(client, bob, charlie, project, buried):
    urls = [reverse("dead-letters", args=[project.id])]
    act = reverse("dead-letters-act", args=[project.id])
    assert client.get(urls[0]).status_code == 302
    client.force_login(bob)
    assert client.get(urls[0]).status_code == 403
    assert client.post(act, {"action": "discard", "group": "x"}).status_code == 403
    assert "dead letter" not in client.get(reverse("project", args=[project.id])).content.decode()
    client.force_login(charlie)
    assert client.get(urls[0]).status_code == 404
    assert client.post(act, {"action": "discard", "group": "x"}).status_code == 404
    assert redis_client().llen(dead_letter_name()) == 6


def _form(page: str, reason_start: str, action: str) -> dict:
    """The fields of a group's form, as the page drew them."""
    import re

    section = page[page.index(reason_start) :]
    key = re.search(r'name="group" value="([0-9a-f]+)"', section).group(1)
    seen = re.search(r'name="seen_until" value="([^"]+)"', section).group(1)
    return {"group": key, "seen_until": seen, "action": action}


def test_requeued_items_go_back_as_they_came_and_get_stored(client, alice, project, buried):
    client.force_login(alice)
    form = _form(_page(client, project), "× rejected by the database", "requeue")
    response = client.post(reverse("dead-letters-act", args=[project.id]), form, follow=True)
    assert "Requeued 3 items" in response.content.decode()
    queued = redis_client().lrange(queue_name(), 0, -1)
    assert sorted(queued) == sorted(orjson.dumps(_item(project, n)) for n in range(3))
    # The other project's letter of the same reason, and the rest, stay.
    assert redis_client().llen(dead_letter_name()) == 3
    assert QueueReader(batch_size=10).run_once() == 3
    assert set(Event.objects.values_list("event_id", flat=True)) == {"dead-0", "dead-1", "dead-2"}
    # Requeued once: clicking again finds nothing to requeue.
    again = client.post(reverse("dead-letters-act", args=[project.id]), form, follow=True)
    assert "Requeued 0 items" in again.content.decode()


def test_discard_removes_only_that_group_of_this_project(client, alice, project, buried):
    client.force_login(alice)
    form = _form(_page(client, project), "× field", "discard")
    client.post(reverse("dead-letters-act", args=[project.id]), form)
    left = [
        orjson.loads(entry)["reason"] for entry in redis_client().lrange(dead_letter_name(), 0, -1)
    ]
    assert "field 'code' must be a string" not in left and len(left) == 5
    assert redis_client().llen(queue_name()) == 0
    assert "<strong>3</strong> in 1 reason" in _page(client, project)


def test_nothing_dead_lettered_after_the_page_was_drawn_is_touched(client, alice, project, buried):
    client.force_login(alice)
    form = _form(_page(client, project), "× field", "discard")
    late = _bury(_item(project, 10), "field 'code' must be a string")  # while the owner reads
    response = client.post(reverse("dead-letters-act", args=[project.id]), form, follow=True)
    assert "Discarded 1 dead letter." in response.content.decode()
    left = [
        orjson.loads(entry)["item"] for entry in redis_client().lrange(dead_letter_name(), 0, -1)
    ]
    assert late.decode() in left


def test_an_item_cut_at_its_size_limit_is_shown_and_discarded_but_never_requeued(
    client, alice, project, settings
):
    settings.ERRORSINK_DEAD_ITEM_MAX_BYTES = 300
    _bury(_item(project, 1, message="x" * 5000), "item is 5,200 bytes, over the limit")
    _bury(_item(project, 2), "item is 5,200 bytes, over the limit")  # a small one, whole
    client.force_login(alice)
    page = _page(client, project)
    assert "<strong>2</strong> in 1 reason" in page
    assert "Only the first 300" in page and "of which 1 can be requeued" in page
    form = _form(page, "× item is", "requeue")
    response = client.post(reverse("dead-letters-act", args=[project.id]), form, follow=True)
    assert "Requeued 1 item" in response.content.decode()
    assert redis_client().lrange(queue_name(), 0, -1) == [orjson.dumps(_item(project, 2))]
    (left,) = redis_client().lrange(dead_letter_name(), 0, -1)
    assert orjson.loads(left)["truncated"] is True
    page = _page(client, project)
    assert 'disabled title="The worker would refuse every item here again, or it was cut' in page
    assert "Requeue 0" in page
    client.post(reverse("dead-letters-act", args=[project.id]), _form(page, "× item is", "discard"))
    assert redis_client().llen(dead_letter_name()) == 0


def test_items_the_worker_would_refuse_again_are_not_requeued(client, alice, project):
    refused = "field 'fingerprint.0' must be a string, got number"
    for n in range(2):
        _bury(_item(project, n, fingerprint=[1, {"x": 2}]), refused)
    _bury(_item(project, 2, fingerprint=["checkout", "timeout"]), refused)  # read by an upgrade
    client.force_login(alice)
    page = _page(client, project)
    assert "of which 1 can be requeued" in page and "Requeue 1" in page
    form = _form(page, "× field", "requeue")
    response = client.post(reverse("dead-letters-act", args=[project.id]), form, follow=True)
    assert "Requeued 1 item" in response.content.decode()
    assert redis_client().lrange(queue_name(), 0, -1) == [
        orjson.dumps(_item(project, 2, fingerprint=["checkout", "timeout"]))
    ]
    page = _page(client, project)
    assert "<strong>2</strong> in 1 reason" in page and "Requeue 0" in page
