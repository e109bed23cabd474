"""The live dashboard in real Chromium against Daphne and a real Celery ingest worker: sign in,
watch errors arrive without a reload, open a timeline, and prove hostile text stays text."""

from __future__ import annotations

import json
import re
import shlex
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from errorsink.ingest.queue import enqueue
from errorsink.quality.rollups import rollups_update
from errorsink.sessions.models import Event
from errorsink.tasks import rollups_compute
from tests.conftest import screenshot

from .conftest import event_create

pytestmark = pytest.mark.django_db(transaction=True)


# Any script that escapes escaping sets window.__xss or opens a dialog; CSP violations are kept.
WATCHERS = """
window.__xss = 0;
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(" "));
});
"""
HOSTILE = (
    "<script>window.__xss=1</script>"
    '<img src=x onerror="window.__xss=2">'
    '<a href="javascript:window.__xss=3">click me</a>'
)


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCHERS)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _open_live(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")


def _push(project, message: str, **fields) -> None:
    """LPUSH one item onto the Redis queue, exactly as a runner pod does."""
    item = {"type": "session_error", "code": "AGENT_CHILD_CRASHED", "message": message,
            "session_id": "live-1", "project_id": str(project.id), "recoverable": False,
            "build_id": "b-42", "event_id": str(uuid.uuid4())}  # fmt: skip
    item.update(fields)
    enqueue([json.dumps(item)])


def _assert_clean(page: Page) -> None:
    assert page.evaluate("window.__xss") == 0
    assert page.dialogs == []
    assert page.evaluate("window.__csp") == []


def test_it_shows_pushed_errors_live_and_keeps_twenty(
    browser, page, live_server_url, celery_worker, alice, project
):
    base = live_server_url
    then = timezone.now() - timedelta(hours=1)
    old = [event_create(project, received_at=then + timedelta(seconds=i), message=f"old {i}")
           for i in range(20)]  # fmt: skip
    _sign_in(page, base, "alice")
    page.click(f"text={project.name}")
    page.wait_for_url(f"{base}/projects/{project.id}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    rows = page.locator("#error-rows tr.error-row")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("old 19")
    screenshot(page, "1-project-before")

    page.evaluate("window.__marker = 'not reloaded'")
    latencies = []
    for n in range(3):
        start = time.monotonic()
        _push(project, f"pushed live {n}")
        expect(rows.first).to_contain_text(f"pushed live {n}", timeout=5000)
        latencies.append(time.monotonic() - start)
        expect(rows).to_have_count(20)
        # The 21st pushes the oldest off.
        expect(page.locator(f"#event-{old[n].pk}")).to_have_count(0)
    print(f"LPUSH to row on screen: {[round(s * 1000) for s in latencies]} ms")
    assert statistics.median(latencies) < 1.0
    assert page.evaluate("window.__marker") == "not reloaded"
    expect(rows.first.locator("td.code")).to_contain_text("Agent child process exited")
    expect(rows.first.locator(".badge.fatal")).to_have_text("fatal")
    expect(rows.first.locator("td.build")).to_contain_text("b-42")
    expect(rows.first.locator("time")).to_have_text(re.compile("just now|seconds? ago"))
    screenshot(page, "1-project-after-pushes")

    rows.first.locator("td.session a").click()
    page.wait_for_url(f"{base}/projects/{project.id}/sessions/live-1/")
    timeline = page.locator("#timeline-rows li.timeline-event")
    expect(timeline).to_have_count(3)
    expect(timeline.last).to_contain_text("pushed live 2")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    _push(project, "later in the same session")
    expect(timeline).to_have_count(4)
    expect(timeline.last).to_contain_text("later in the same session")
    screenshot(page, "1-timeline-live")
    _assert_clean(page)


def test_it_filters_the_list_and_the_live_rows(
    browser, page, live_server_url, celery_worker, alice, project
):
    event_create(project, code="RUNNER_INTERNAL", source="runner", message="runner one")
    event_create(project, code="AGENT_CHILD_CRASHED", source="agent", message="agent one")
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/")
    page.select_option("select[name=source]", "runner")
    page.click(".filters button[type=submit]")
    # Only the filters that are set reach the URL.
    page.wait_for_url(re.compile(r"\?source=runner&window=24h$"))
    rows = page.locator("#error-rows tr.error-row")
    expect(rows).to_have_count(1)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")

    _push(project, "agent two", source="agent")
    _push(project, "runner two", code="RUNNER_INTERNAL", source="runner")
    expect(rows.first).to_contain_text("runner two")
    expect(rows).to_have_count(2)
    expect(page.locator("#error-rows")).not_to_contain_text("agent")
    screenshot(page, "2-filtered")
    _assert_clean(page)


def test_an_issue_resolved_then_regressed_live_offers_the_actions_of_its_new_status(
    browser, page, live_server_url, celery_worker, alice, project
):
    from errorsink.issues.models import Issue

    _push(project, "handler failed on turn 1")
    deadline = time.monotonic() + 10
    while not (issue := Issue.objects.filter(project=project).first()):
        assert time.monotonic() < deadline, "the pushed error made no issue"
        time.sleep(0.05)
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/issues/{issue.id}/")
    actions = page.locator(".issue-actions button")
    expect(actions.filter(visible=True)).to_have_text(["Resolve", "Ignore"])
    page.click(".issue-actions button:has-text('Resolve')")
    expect(page.locator("#issue-summary .status-resolved")).to_have_count(1)
    expect(actions.filter(visible=True)).to_have_text(["Reopen", "Ignore"])
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")

    _push(project, "handler failed on turn 2")  # same fingerprint: the issue regresses
    expect(page.locator("#issue-summary .regressed")).to_have_count(1, timeout=10000)
    expect(page.locator("#issue-summary .status-unresolved")).to_have_count(1)
    expect(actions.filter(visible=True)).to_have_text(["Resolve", "Ignore"])
    screenshot(page, "6-issue-regressed-live")
    _assert_clean(page)


def test_it_shows_a_session_timeline_with_catalog_help(
    browser, page, live_server_url, alice, project, session_events
):
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/")
    page.fill("input[name=session_id]", "call-42")
    page.click(".find-session button")
    page.wait_for_url(f"{live_server_url}/projects/{project.id}/sessions/call-42/")
    items = page.locator("#timeline-rows li.timeline-event")
    expect(items).to_have_count(5)
    kinds = items.locator(".badge.kind").all_inner_texts()
    assert kinds == ["error", "warning", "warning", "warning", "termination"]
    assert items.locator(".offset").all_inner_texts() == [
        "+0:00.000", "+0:10.000", "+0:20.000", "+0:30.000", "+0:40.000",
    ]  # fmt: skip
    expect(items.locator(".fix")).to_have_count(5)
    expect(items.locator(".desc.unknown")).to_have_count(0)
    expect(items.last.locator("dl.termination")).to_contain_text("sipCode486")
    stack = items.first.locator("details.stack")
    expect(stack).not_to_have_attribute("open", "")
    stack.locator("summary").click()
    expect(stack.locator("pre")).to_be_visible()
    screenshot(page, "3-timeline")

    page.goto(f"{live_server_url}/projects/{project.id}/")
    page.fill("input[name=session_id]", "no-such-call")
    page.click(".find-session button")
    expect(page.locator(".messages")).to_contain_text("No session 'no-such-call' in this project")
    # It lands on the sessions list, filtered by what was typed, with a way back.
    expect(page.locator("input[name=q]")).to_have_value("no-such-call")
    expect(page.locator("table.sessions")).to_contain_text("No sessions match these filters.")
    _assert_clean(page)


def test_it_refuses_outsiders_pages_and_websockets(
    browser, page, live_server_url, charlie, project, session_events
):
    _sign_in(page, live_server_url, "charlie")
    assert page.goto(f"{live_server_url}/projects/{project.id}/").status == 404
    assert page.goto(f"{live_server_url}/projects/{project.id}/sessions/call-42/").status == 404
    page.goto(f"{live_server_url}/")
    expect(page.locator("body")).not_to_contain_text(project.name)
    outcome = page.evaluate(
        """(path) => new Promise((resolve) => {
            const ws = new WebSocket(location.origin.replace("http", "ws") + path);
            ws.onmessage = () => resolve("message");
            ws.onopen = () => setTimeout(() => resolve("open"), 500);
            ws.onclose = (e) => resolve("closed " + e.code);
        })""",
        f"/ws/projects/{project.id}/",
    )
    assert outcome.startswith("closed")


def test_it_renders_hostile_text_inert(
    browser, page, live_server_url, celery_worker, alice, project
):
    event_create(project, session_id="javascript:window.__xss=4", message=HOSTILE, stack=HOSTILE,
                 customer_context={"note": HOSTILE}, build_id=HOSTILE[:60])  # fmt: skip
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/")
    _push(project, HOSTILE, stack=HOSTILE, customer_context={"note": HOSTILE},
          session_id="javascript:window.__xss=5")  # fmt: skip
    rows = page.locator("#error-rows tr.error-row")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row.locator("td.message")).to_have_text(HOSTILE)
    table = page.locator("#error-rows")
    expect(table.locator("script, img")).to_have_count(0)
    expect(page.locator("a[href^='javascript:']")).to_have_count(0)
    screenshot(page, "4-hostile-project")

    rows.first.locator("td.session a").click()  # a relative link, not a javascript: URL
    page.wait_for_url(re.compile(r"/sessions/javascript:window.__xss=5/$"))
    item = page.locator("#timeline-rows li.timeline-event")
    expect(item).to_have_count(1)
    item.locator("details.stack summary").click()
    expect(item.locator("details.stack pre")).to_have_text(HOSTILE)
    expect(item.locator("details.context pre")).to_contain_text("<script>window.__xss=1</script>")
    expect(item.locator("script, img, a[href^='javascript:']")).to_have_count(0)
    screenshot(page, "4-hostile-timeline")
    page.wait_for_timeout(300)  # any onerror of a smuggled <img src=x> would have fired by now
    _assert_clean(page)
    assert Event.objects.filter(project=project).count() == 2


def test_it_shows_a_new_project_a_redis_cli_line_that_works(
    browser, page, live_server_url, celery_worker, alice, project
):
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/")
    expect(page.locator("#error-rows .empty-row")).to_have_count(1)
    line = page.locator("#first-event-redis").inner_text()
    assert str(project.id) in line and "LPUSH session-errors" in line
    curl = page.locator("#first-event-curl").inner_text()
    assert f"/api/v1/projects/{project.id}/events" in curl
    screenshot(page, "5-first-event")

    # Copied from the page and run as is: the first event appears without a reload.
    subprocess.run(shlex.split(line), check=True, capture_output=True, timeout=10)
    rows = page.locator("#error-rows tr.error-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("AGENT_CHILD_CRASHED")
    expect(page.locator("#error-rows .empty-row")).to_have_count(0)
    # The help has done its job: it goes with the first row, not at the next reload.
    expect(page.locator("#first-event")).to_have_count(0)
    # And the new error is grouped: the issues list shows it within its redraw.
    expect(page.locator("#issue-rows tr[data-issue]")).to_have_count(1, timeout=10000)
    _assert_clean(page)


def test_it_lists_projects_with_counts_and_sparklines(
    browser, page, live_server_url, alice, project
):
    now = timezone.now()
    for hours in [0, 0, 1, 3, 3, 3, 7, 12, 20]:
        event_create(project, occurred_at=now - timedelta(hours=hours))
    for hours in [0, 2, 2, 5]:
        event_create(
            project, kind=Event.WARNING, code="31002", occurred_at=now - timedelta(hours=hours)
        )
    rollups_update()  # the list reads the rollups
    _sign_in(page, live_server_url, "alice")
    row = page.locator("tr.project-row")
    expect(row).to_have_count(1)
    expect(row.locator("td.count.errors")).to_have_text("9")
    expect(row.locator("td.count.warnings")).to_have_text("4")
    expect(row.locator("svg.sparkline polyline")).to_have_count(2)
    screenshot(page, "6-projects")
    page.click("form.signout button")
    page.wait_for_url(re.compile(r"/login/$"))
    assert page.goto(f"{live_server_url}/").url.endswith("/login/?next=/")
    _assert_clean(page)


def test_the_quality_panel_moves_when_a_warning_arrives(
    browser, page, live_server_url, celery_worker, alice, project
):
    _sign_in(page, live_server_url, "alice")
    _open_live(page, f"{live_server_url}/projects/{project.id}/?window=1h")
    panel = page.locator("#quality-panel")
    expect(panel).to_contain_text("No calls in the last 1 h.")
    page.evaluate("window.__same_page = true")
    _push(project, "", type="session_warning", code="HIGH_JITTER", session_id="call-q1",
          metrics={"jitter_ms": 61.5})  # fmt: skip
    _wait_stored(project, count=1)
    rollups_compute.delay()  # what beat sends every 2 s, through the real worker
    expect(panel.locator("svg.bars rect")).to_have_count(1)
    expect(panel.locator(".legend")).to_contain_text("HIGH_JITTER")
    expect(panel.locator("#degraded-share")).to_have_text("100%")
    assert page.evaluate("window.__same_page") is True  # no reload
    screenshot(page, "7-quality-live-1280")
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "7-quality-live-390")
    # A month's panel comes after the page, in the placeholder's place.
    page.click("#quality-panel .windows a:text-is('30 d')")
    expect(panel).to_have_attribute("data-window", "30d")
    expect(panel.locator(".legend")).to_contain_text("HIGH_JITTER")
    expect(panel).not_to_have_attribute("aria-busy", "true")
    _assert_clean(page)


def _wait_stored(project, *, count: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while Event.objects.filter(project=project).count() < count:
        assert time.monotonic() < deadline, "the worker did not store the pushed items"
        time.sleep(0.05)


def test_it_resyncs_after_the_server_comes_back(browser, page, private_stack, alice, project):
    """Daphne goes away; an error stored meanwhile shows up once the page has reconnected."""
    daphne = private_stack.web()
    port = daphne.port
    try:
        base = f"http://127.0.0.1:{port}"
        before = event_create(project, message="before the restart")
        _sign_in(page, base, "alice")
        _open_live(page, f"{base}/projects/{project.id}/")
        rows = page.locator("#error-rows tr.error-row")
        expect(rows).to_have_count(1)

        private_stack.stop(daphne.proc)
        expect(page.locator("#live-status")).to_have_attribute("data-state", "closed")
        missed = event_create(project, message="stored while the server was down")
        daphne = private_stack.web(port=port)

        expect(page.locator("#live-status")).to_have_attribute("data-state", "open", timeout=20000)
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_id(f"event-{missed.pk}")
        expect(rows.last).to_have_id(f"event-{before.pk}")
        _assert_clean(page)
    finally:
        private_stack.stop()
