"""The "Load demo data" offer of an empty project, as alice (owner), bob (member) and charlie
(outsider), and the button's whole path through a real Celery worker."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from errorsink.demo import BUILDS, DEFAULT_SESSIONS, REGRESSION
from errorsink.ingest.queue import dead_letter_name, processing_prefix, queue_name, redis_client
from errorsink.sessions.models import Event, Session
from errorsink.tasks import demo_load
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db


def _page(project) -> str:
    return reverse("project", args=[project.id])


def _demo_url(project) -> str:
    return reverse("demo-load", args=[project.id])


@pytest.fixture
def queue():
    client = redis_client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def tasks_run_here():
    """The task runs inside the request, so the test sees what it pushed without a worker
    (the last test here goes through a real one)."""
    conf = demo_load.app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved


def test_it_offers_the_owner_of_an_empty_project_demo_data(client, alice, project):
    client.force_login(alice)
    html = client.get(_page(project)).content.decode()
    offer = re.search(r'<div class="demo-offer" id="demo-offer">.*?</div>', html, re.S).group(0)
    assert f'<form method="post" action="{_demo_url(project)}">' in offer
    assert 'name="csrfmiddlewaretoken"' in offer
    assert "Load demo data" in offer and f"{DEFAULT_SESSIONS} sessions" in offer
    assert "errorsink/demo.css" in html
    # Beside the first-event instructions, inside their block.
    assert html.index('id="first-event"') < html.index('id="demo-offer"')


def test_it_does_not_offer_demo_data_to_a_member(client, bob, project):
    client.force_login(bob)
    html = client.get(_page(project)).content.decode()
    assert 'id="first-event"' in html
    assert "demo-offer" not in html and "Load demo data" not in html


def test_it_does_not_offer_demo_data_once_there_are_events(client, alice, project, make_event):
    make_event(project)
    client.force_login(alice)
    assert "Load demo data" not in client.get(_page(project)).content.decode()


def test_it_pushes_the_demo_day_for_the_owner(client, alice, project, queue, tasks_run_here):
    client.force_login(alice)
    response = client.post(_demo_url(project), follow=True)
    assert response.redirect_chain == [(_page(project), 302)]
    assert "Demo data is on its way: " in response.content.decode()
    assert queue.llen(queue_name()) > DEFAULT_SESSIONS


def test_it_refuses_a_member(client, bob, project, queue, tasks_run_here):
    client.force_login(bob)
    assert client.post(_demo_url(project)).status_code == 403
    assert queue.llen(queue_name()) == 0


def test_it_404s_an_outsider(client, charlie, project, queue, tasks_run_here):
    client.force_login(charlie)
    assert client.post(_demo_url(project)).status_code == 404
    assert queue.llen(queue_name()) == 0


def test_it_sends_anonymous_users_to_sign_in(client, project, queue, tasks_run_here):
    response = client.post(_demo_url(project))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert queue.llen(queue_name()) == 0


def test_it_accepts_only_post(client, alice, project, queue, tasks_run_here):
    client.force_login(alice)
    assert client.get(_demo_url(project)).status_code == 405
    assert queue.llen(queue_name()) == 0


def test_it_needs_the_csrf_token(alice, project, queue, tasks_run_here):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(_demo_url(project)).status_code == 403
    html = client.get(_page(project)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post(_demo_url(project), {"csrfmiddlewaretoken": token}).status_code == 302
    assert queue.llen(queue_name()) > 0


def test_it_leaves_a_project_with_events_alone(
    client, alice, project, make_event, queue, tasks_run_here
):
    make_event(project)
    client.force_login(alice)
    response = client.post(_demo_url(project), follow=True)
    assert "already has events, so no demo data was added" in response.content.decode()
    assert queue.llen(queue_name()) == 0


@pytest.mark.django_db(transaction=True)
def test_the_button_fills_the_project_through_a_real_worker(
    client, alice, project, queue, celery_worker
):
    client.force_login(alice)
    assert client.post(_demo_url(project)).status_code == 302

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        settled = not queue.llen(queue_name()) and not list(
            queue.scan_iter(processing_prefix() + "*")
        )
        if settled and Session.objects.filter(project=project).count() == DEFAULT_SESSIONS:
            break
        time.sleep(0.2)
    assert Session.objects.filter(project=project).count() == DEFAULT_SESSIONS
    assert Event.objects.filter(project=project).count() > DEFAULT_SESSIONS
    assert queue.llen(dead_letter_name()) == 0

    # The quality panel shows the regression, and only it, as worse than its predecessor.
    roll_up()
    html = client.get(_page(project)).content.decode()
    assert "Load demo data" not in html
    quality, latency = html.split('id="latency-panel"')
    for panel in (quality, latency):  # and the latency panel the regression, and only it, slower
        builds = re.findall(r'<tr class="(worse)?">\s*<td><code title="([^"]+)"', panel)
        assert {build for _, build in builds} == {build.build_id for build in BUILDS}
        assert [build for worse, build in builds if worse] == [REGRESSION]
