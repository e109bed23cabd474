"""A team lead in Chromium, as a new user would: sign in, create a project, invite a teammate by
email; the teammate opens the link in a browser of their own, makes an account and watches the
project's errors arrive live; then the lead demotes and removes them, and the teammate's open
page closes at once and answers 404 from then on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from errorsink.ingest.queue import enqueue
from errorsink.projects.models import Membership, Project
from tests.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def contexts(browser) -> Iterator[tuple[Page, Page]]:
    lead, mate = browser.new_context(viewport=DESKTOP), browser.new_context(viewport=DESKTOP)
    yield lead.new_page(), mate.new_page()
    lead.close()
    mate.close()


def _push(project: Project, message: str) -> None:
    item = {"type": "session_error", "code": "AGENT_CHILD_CRASHED", "message": message,
            "session_id": "team-1", "project_id": str(project.id),
            "event_id": str(uuid.uuid4())}  # fmt: skip
    enqueue([json.dumps(item)])


def _both_widths(page: Page, name: str) -> None:
    """Screenshots at 1280 and 390 px; nothing may be wider than a phone's screen."""
    screenshot(page, name)
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-390")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size(DESKTOP)
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than 390"


def _members_row(page: Page, username: str):
    return page.locator(f"tr.member-row[data-username={username}]")


def test_a_lead_builds_a_team_in_the_browser(contexts, live_server_url, celery_worker, alice):
    base, (lead, mate) = live_server_url, contexts
    lead.goto(f"{base}/login/")
    lead.fill("input[name=username]", "alice")
    lead.fill("input[name=password]", "alice-password")
    lead.click("button[type=submit]")
    lead.wait_for_url(f"{base}/")
    _both_widths(lead, "team-0-projects")
    lead.fill("form.new-project input[name=name]", "Support line")
    lead.get_by_role("button", name="Create").click()
    project = Project.objects.get(name="Support line")
    lead.wait_for_url(f"{base}/projects/{project.id}/")
    expect(lead.locator(".flash")).to_contain_text("you are its owner")

    lead.get_by_role("link", name="Members").click()
    lead.fill("input[name=email]", "dana@example.com")
    lead.select_option("select[name=role]", "owner")
    lead.get_by_role("button", name="Send invitation").click()
    expect(lead.locator(".flash")).to_contain_text("Invitation sent to dana@example.com")
    link = lead.locator("#invitation-link").inner_text()
    _both_widths(lead, "team-1-invited")

    mate.goto(link)
    expect(mate.locator("h1")).to_have_text("Join Support line")
    _both_widths(mate, "team-2-invitation")
    mate.fill("input[name=username]", "dana")
    mate.fill("input[name=password1]", "dana's long passphrase")
    mate.fill("input[name=password2]", "dana's long passphrase")
    mate.get_by_role("button", name="Make the account and join").click()
    mate.wait_for_url(f"{base}/projects/{project.id}/")
    expect(mate.locator("#live-status")).to_have_attribute("data-state", "open")
    _push(project, "Handler crashed while dana watched")
    expect(mate.locator("#error-rows tr.error-row").first).to_contain_text(
        "Handler crashed while dana watched", timeout=10_000
    )
    screenshot(mate, "team-2-teammate-live")

    lead.reload()
    expect(_members_row(lead, "dana")).to_contain_text("Owner")
    expect(_members_row(lead, "alice")).to_contain_text("Make member")  # two owners now
    _members_row(lead, "dana").get_by_role("button", name="Make member").click()
    expect(lead.locator(".flash")).to_contain_text("dana is now a member")
    assert Membership.objects.get(project=project, user__username="dana").role == "member"
    expect(mate.locator("#live-status")).to_have_attribute("data-state", "open")  # still theirs

    row = _members_row(lead, "dana")
    row.locator("summary", has_text="Remove").click()
    row.get_by_role("button", name="Remove dana").click()
    expect(lead.locator(".flash")).to_contain_text("dana was removed from the project")
    expect(mate.locator("#live-status")).to_have_attribute("data-state", "ended")
    expect(mate.locator("#live-status")).to_contain_text("no access to this project any more")
    screenshot(mate, "team-3-teammate-removed")
    assert mate.goto(f"{base}/projects/{project.id}/").status == 404
    history = lead.locator(".team-changes")
    for line in ("alice invited dana@example.com as owner",
                 "dana joined as owner (invitation to dana@example.com)",
                 "alice changed dana's role (owner → member)", "alice removed dana"):  # fmt: skip
        expect(history).to_contain_text(line)
    screenshot(lead, "team-4-history")
