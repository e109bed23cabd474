"""A Sentry event's stack on the issue page and in its session's timeline: frames innermost
first with file, function and line, the agent's own frames marked, every value escaped."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from errorsink.issues.models import Issue
from tests.errorsink.sentry.test_format import EXCEPTION_EVENT
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db

HOSTILE = "<img src=x onerror=alert(1)>"


def _sentry_item(project, **event_fields) -> dict:
    event = {**EXCEPTION_EVENT, **event_fields}
    return {"type": "sdk_event", "sdk": "sentry", "name": "event", "project_id": str(project.id),
            "event_id": event["event_id"], "event": event}  # fmt: skip


def _frames(html: str) -> list[str]:
    """Each frame as its class and text, in page order."""
    block = html.split('<ol class="frames">', 1)[1].split("</ol>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip() + f" [{cls.strip()}]"
        for cls, text in re.findall(r'<li class="frame([^"]*)">(.*?)</li>', block, re.S)
    ]


def test_the_issue_page_shows_the_latest_stack_innermost_first(client, bob, project):
    items_store([_sentry_item(project)])
    issue = Issue.objects.get(project=project)
    client.force_login(bob)
    html = client.get(reverse("issue", args=[project.id, issue.id])).content.decode()
    assert 'id="latest-stack"' in html
    assert _frames(html) == [
        "decode in json/decoder.py at line 3 []",
        "lookup_order in agent/tools.py at line 12 your code [in-app]",
        "run in pipecat/pipeline.py at line 88 []",
    ]


def test_the_timeline_shows_the_frames_and_escapes_them(client, bob, project):
    frames = [{"filename": f"agent/{HOSTILE}.py", "function": HOSTILE, "lineno": 7,
               "in_app": True}]  # fmt: skip
    exception = {"values": [{"type": "ValueError", "value": HOSTILE,
                             "stacktrace": {"frames": frames}}]}  # fmt: skip
    items_store([_sentry_item(project, exception=exception)])
    client.force_login(bob)
    url = reverse("session-timeline", args=[project.id, "call-123"])
    html = client.get(url).content.decode()
    assert HOSTILE not in html
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert _frames(html) == [f"{escaped} in agent/{escaped}.py at line 7 your code [in-app]"]
    # Its code is an exception type no catalog knows: said as what it is, not "unknown code".
    assert "exception from a Sentry SDK (python)" in html and "unknown code" not in html
    page = client.get(reverse("project", args=[project.id])).content.decode()
    assert "exception from a Sentry SDK (python)" in page and "unknown code" not in page


def test_a_text_stack_stays_text(client, bob, project):
    items_store([error_item(project.id, stack="Traceback: boom", session_id="call-9")])
    client.force_login(bob)
    html = client.get(reverse("session-timeline", args=[project.id, "call-9"])).content.decode()
    assert "<pre>Traceback: boom</pre>" in html and 'class="frames"' not in html
    issue = Issue.objects.get(project=project)
    html = client.get(reverse("issue", args=[project.id, issue.id])).content.decode()
    assert "<pre>Traceback: boom</pre>" in html
