"""`manage.py demo` against the real Redis queue and PostgreSQL: what it pushes is stored once,
fills every quality figure, and goes to the project the help promises."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from errorsink.demo import BUILDS, DEMO_PROJECT_NAME, REGRESSION
from errorsink.ingest.queue import queue_name
from errorsink.projects.models import Membership, Project
from errorsink.projects.services import project_create
from errorsink.projects.session_settings import session_settings_update
from errorsink.quality.figure_reads import project_quality
from errorsink.sessions.models import Event, Session
from tests.errorsink.conftest import dead_letters, drain
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db(transaction=True)


def demo(*args: str) -> str:
    out = StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def test_it_pushes_a_day_that_the_worker_stores_and_the_figures_show(reader, project, alice):
    session_settings_update(
        project=project, changes={"error_message": "One moment, please."}, user=alice
    )
    output = demo("--project", str(project.id), "--sessions", "200", "--seed", "3")
    pushed = reader.queue.redis.llen(queue_name())
    assert f"Pushed {pushed:,} items for 200 sessions over the last 24 hours" in output
    assert f"{REGRESSION} (the worse one)" in output
    assert f"/projects/{project.id}/" in output

    assert drain(reader) == pushed
    assert dead_letters(reader) == []
    assert Event.objects.filter(project=project).count() == pushed
    assert Session.objects.filter(project=project).count() == 200
    crash = Event.objects.filter(code="AGENT_HANDLER_FAILED").first()
    assert crash.message == "One moment, please." and crash.customer_context["userId"]

    roll_up()
    figures = project_quality(project_id=project.id, window="24h")
    assert figures["sessions"]["active"] >= 190 and figures["sessions"]["degraded"] > 0
    warnings = {row["name"]: row for row in figures["warnings"]}
    assert {"HIGH_RTT", "HIGH_JITTER", "HIGH_PACKET_LOSS", "LOW_MOS"} <= set(warnings)
    assert warnings["HIGH_JITTER"]["metrics"]["jitter_ms"]["p95"] > 30
    assert warnings["LOW_MOS"]["metrics"]["mos"]["avg"] < 3.5
    assert sum(len(row["series"]) for row in warnings.values()) > 20
    assert {row["expected"] for row in figures["terminations"]} == {True, False}
    assert any(row["code"] == "AGENT_HANDLER_FAILED" for row in figures["errors"])
    builds = {row["build_id"]: row for row in figures["builds"]}
    assert set(builds) == {build.build_id for build in BUILDS}
    others = [row for build_id, row in builds.items() if build_id != REGRESSION]
    assert builds[REGRESSION]["degraded_share"] > max(row["degraded_share"] for row in others)


def test_it_stores_nothing_twice_for_the_same_seed_and_more_for_another(reader, project):
    demo("--project", str(project.id), "--sessions", "30")
    drain(reader)
    stored = Event.objects.count()

    again = demo("--project", str(project.id), "--sessions", "30")
    assert f"{stored:,} events of seed 1 were stored before" in again
    drain(reader)
    assert Event.objects.count() == stored

    demo("--project", str(project.id), "--sessions", "30", "--seed", "2")
    drain(reader)
    assert Event.objects.count() > stored
    assert Session.objects.count() == 60
    assert dead_letters(reader) == []


def test_its_link_is_the_dashboard_address_not_a_fixed_port(clean_queue, project, settings):
    settings.ERRORSINK_PUBLIC_URL = "http://localhost:8200/"  # the stack's port, as it recorded
    output = demo("--project", str(project.id), "--sessions", "5")
    assert f"Open http://localhost:8200/projects/{project.id}/" in output


def test_it_says_when_no_worker_is_running(clean_queue, project):
    output = demo("--project", str(project.id), "--sessions", "5")
    assert "No ingest worker is running" in output


def test_it_fills_the_only_project_when_none_is_named(clean_queue, alice):
    only = project_create(name="My first project", owner=alice)
    assert f"project 'My first project' ({only.id})" in demo("--sessions", "5")
    assert clean_queue.llen(queue_name()) > 0


def test_it_makes_a_demo_project_for_the_superusers_when_there_are_several(
    clean_queue, project, django_user_model
):
    project_create(name="Another bot")
    root = django_user_model.objects.create_superuser("root", "root@localhost", "pw")
    admin = django_user_model.objects.create_superuser("admin", "admin@localhost", "pw")

    output = demo("--sessions", "5")

    demo_project = Project.objects.get(name=DEMO_PROJECT_NAME)
    assert f"the created project {DEMO_PROJECT_NAME!r} ({demo_project.id})" in output
    assert {m.user for m in demo_project.memberships.all()} == {root, admin}
    assert {m.role for m in demo_project.memberships.all()} == {Membership.OWNER}
    assert "the existing project" in demo("--sessions", "5", "--seed", "2")
    assert Project.objects.filter(name=DEMO_PROJECT_NAME).count() == 1


def test_it_refuses_when_no_superuser_could_own_a_demo_project(clean_queue, project):
    project_create(name="Another bot")
    with pytest.raises(CommandError, match="createsuperuser"):
        demo()
    assert clean_queue.llen(queue_name()) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--project", "00000000-0000-4000-8000-000000000000"], "no project with id"),
        (["--project", "not-a-uuid"], "no project with id"),
        (["--hours", "0"], "--hours must be 1 to 720"),
        (["--sessions", "100001"], "--sessions must be 1 to 100000"),
    ],
)
def test_it_refuses_bad_options(clean_queue, project, args, message):
    with pytest.raises(CommandError, match=message):
        demo(*args)
    assert clean_queue.llen(queue_name()) == 0
