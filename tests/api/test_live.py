"""In real Chromium against Daphne and a real Celery ingest worker: an event POSTed to the API
shows on the open dashboard within a second, and the API docs render with no CDN."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import httpx
import pytest
from django.db import connection
from django.test import Client
from playwright.sync_api import Page, expect

from errorsink.projects.api_keys import api_key_create
from tests.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push([e.violatedDirective, e.blockedURI].join(" "));
});
"""


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.outside_requests = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
            else page.outside_requests.append(request.url)
        ),
    )
    yield page
    context.close()


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def test_it_shows_posted_events_on_the_dashboard_within_a_second(
    browser, page, live_server_url, celery_worker, alice, project
):
    _, key = api_key_create(project=project, scopes="errors:write")
    page.context.add_cookies([{"name": "sessionid", "value": _session_cookie(alice),
                               "url": live_server_url}])  # fmt: skip
    page.goto(f"{live_server_url}/projects/{project.id}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    rows = page.locator("#error-rows tr.error-row")

    latencies = []
    with httpx.Client(base_url=f"{live_server_url}/api/v1",
                      headers={"Authorization": f"Bearer {key}"}) as api:  # fmt: skip
        for n in range(3):
            start = time.monotonic()
            response = api.post(f"/projects/{project.id}/events", json={
                "type": "session_error", "code": "WEBRTC_CONNECTION_FAILED",
                "message": f"posted through the API {n}", "session_id": "browser-7",
            })  # fmt: skip
            assert response.status_code == 202, response.text
            expect(rows.first).to_contain_text(f"posted through the API {n}", timeout=5000)
            latencies.append(time.monotonic() - start)
    print(f"POST to row on screen: {[round(s * 1000) for s in latencies]} ms")
    assert statistics.median(latencies) < 1.0
    expect(rows).to_have_count(3)
    expect(rows.first.locator("td.source")).to_have_text("client")
    screenshot(page, "api-posted-events-on-dashboard")
    assert page.evaluate("window.__csp") == []


def test_it_renders_the_api_docs_offline_under_the_csp(browser, page, live_server_url):
    document = page.request.get(f"{live_server_url}/api/v1/openapi.json").json()
    operation_count = sum(len(methods) for methods in document["paths"].values())
    page.goto(f"{live_server_url}/api/v1/docs")
    operations = page.locator(".opblock")
    # Every operation of the document is drawn, from local assets.
    expect(operations).to_have_count(operation_count, timeout=15000)
    expect(page.locator(".info .title")).to_contain_text("errorsink API")
    expect(page.locator("body")).to_contain_text("/api/v1/projects/{project_id}/events")
    screenshot(page, "api-docs")
    assert page.outside_requests == []
    assert page.evaluate("window.__csp") == []


def _backends_on(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        return cursor.fetchone()[0]


def test_api_requests_borrow_daphnes_pooled_connections(live_server_url, project, key):
    """Daphne runs each request on a thread of its own. With a connection kept per thread,
    every request opened a PostgreSQL backend of its own, left idle until collected; lent from
    the process's pool, 40 requests reuse the same few."""
    database = connection.settings_dict["NAME"]
    url = f"{live_server_url}/api/v1/projects/{project.id}/session-errors"
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        client.get(url).raise_for_status()  # the pool is open, the keys are loaded
        before = _backends_on(database)
        for _ in range(40):
            assert client.get(url).status_code == 200
        after = _backends_on(database)
    assert after - before <= 2, f"{after - before} more connections after 40 requests"
