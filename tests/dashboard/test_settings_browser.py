"""The session settings panel in real Chromium against Daphne: inline save without a reload,
refusals that change nothing, the live character count, preview, and the member's view."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import SessionSettings, SettingsChange
from tests.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT = "Sorry, something went wrong."

# Records CSP violations, and replaces speaking with a record of what would have been said: the
# test must not depend on a speech engine being installed on the machine.
RECORDERS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(" "));
});
window.__spoken = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = (utterance) => window.__spoken.push(utterance.text);
  window.speechSynthesis.cancel = () => {};
}
"""


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context()
    context.add_init_script(RECORDERS)
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page: Page, base: str, username: str, next_path: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_path) + "$"))
    page.wait_for_function("window.htmx !== undefined")


def _settings_path(project) -> str:
    return f"/projects/{project.id}/settings/"


def _stored(project) -> tuple[str, int]:
    settings = SessionSettings.objects.get(project=project)
    return settings.error_message, settings.idle_timeout_seconds


def _no_csp_violations(page: Page) -> None:
    assert page.evaluate("window.__csp") == []


def test_it_saves_the_message_inline_on_the_project_page(live_server_url, page, project, alice):
    _sign_in(page, live_server_url, "alice", f"/projects/{project.id}/")
    panel = page.locator("#session-settings")
    expect(panel).to_be_visible()
    screenshot(page, "1-owner-before")
    page.evaluate("window.__sameDocument = 'still here'")

    panel.locator("textarea[name=error_message]").fill("Sorry, I hit a snag. Goodbye for now.")
    panel.get_by_role("button", name="Save").click()

    expect(page.locator("#session-settings .saved")).to_have_text("Saved")
    # The marker survives only if the page was never reloaded.
    assert page.evaluate("window.__sameDocument") == "still here"
    assert _stored(project) == ("Sorry, I hit a snag. Goodbye for now.", 300)
    # What the API (and so the CLI and the next deploy) reads back.
    _, key = api_key_create(project=project, scopes=["settings:read"])
    api = httpx.get(
        f"{live_server_url}/api/v1/projects/{project.id}/session-settings",
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert api["error_message"] == "Sorry, I hit a snag. Goodbye for now."
    deploy_env = api["deploy_env"]
    assert deploy_env["AGENT_CRASH_TTS_MESSAGE"] == "Sorry, I hit a snag. Goodbye for now."
    shown = page.locator('#session-settings [data-deploy-env="AGENT_CRASH_TTS_MESSAGE"]')
    expect(shown).to_have_text(deploy_env["AGENT_CRASH_TTS_MESSAGE"])
    expect(page.locator("#session-settings")).to_contain_text(
        "Changes apply on the next deploy as AGENT_CRASH_TTS_MESSAGE"
    )
    row = page.locator("#session-settings .settings-history tbody tr").first
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("Crash TTS message")
    expect(row).to_contain_text("Sorry, I hit a snag. Goodbye for now.")
    expect(row.locator("time")).to_have_text("just now")
    expect(row.locator("time")).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d .*UTC$"))
    screenshot(page, "2-owner-saved")
    _no_csp_violations(page)


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "Crash TTS message must not be empty"),
        ("   ", "Crash TTS message must not be empty"),
        ("x" * 501, "Crash TTS message must be at most 500 characters (got 501)"),
        ("Sorry\x07 bell", "Crash TTS message must not contain control characters (found U+0007)"),
        (
            "Line one\nline two",
            "Crash TTS message must not contain control characters (found U+000A)",
        ),
    ],
    ids=["empty", "blank", "501-chars", "bell", "newline"],
)
def test_it_refuses_an_invalid_message_and_changes_nothing(
    live_server_url, page, project, alice, typed, error
):
    _sign_in(page, live_server_url, "alice", _settings_path(project))
    page.evaluate("window.__sameDocument = 'still here'")
    textarea = page.locator("#session-settings textarea[name=error_message]")
    textarea.fill(typed)
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#ss-error-message-error")).to_have_text(error)
    # The refused text stays in the box for fixing; what is stored and deployed does not move.
    assert page.locator("#session-settings textarea[name=error_message]").input_value() == typed
    expect(page.locator('[data-deploy-env="AGENT_CRASH_TTS_MESSAGE"]')).to_have_text(DEFAULT)
    expect(page.locator("#session-settings .saved")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") == "still here"
    assert _stored(project) == (DEFAULT, 300)
    assert not SettingsChange.objects.exists()
    if typed == "":
        screenshot(page, "3-owner-empty-refused")
    _no_csp_violations(page)


def test_it_refuses_an_out_of_range_idle_timeout(live_server_url, page, project, alice):
    _sign_in(page, live_server_url, "alice", _settings_path(project))
    page.locator("input[name=idle_timeout_seconds]").fill("9")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#ss-idle-timeout-error")).to_have_text(
        "Idle timeout must be between 10 and 3600 seconds"
    )
    assert _stored(project) == (DEFAULT, 300)
    assert not SettingsChange.objects.exists()


def _retention(project) -> int:
    project.refresh_from_db()
    return project.retention_days


def test_it_saves_the_event_retention_inline(live_server_url, page, project, alice):
    _sign_in(page, live_server_url, "alice", f"/projects/{project.id}/")
    page.evaluate("window.__sameDocument = 'still here'")
    panel = page.locator("#session-settings")
    field = panel.get_by_label("Event retention (days)")
    expect(field).to_have_value("30")
    expect(panel).to_contain_text("Quality figures are kept 13 months.")

    field.fill("90")
    panel.get_by_role("button", name="Save").click()

    expect(page.locator("#session-settings .saved")).to_have_text("Saved")
    assert page.evaluate("window.__sameDocument") == "still here"
    assert _retention(project) == 90
    assert _stored(project) == (DEFAULT, 300)  # the other settings as they were
    row = page.locator("#session-settings .settings-history tbody tr").first
    expect(row).to_contain_text("Event retention")
    expect(row).to_contain_text("90")
    _, key = api_key_create(project=project, scopes=["settings:read"])
    api = httpx.get(
        f"{live_server_url}/api/v1/projects/{project.id}/session-settings",
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert api["retention_days"] == 90
    screenshot(page, "6-owner-retention-saved")
    _no_csp_violations(page)


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("0", "Event retention must be between 1 and 400 days"),
        ("401", "Event retention must be between 1 and 400 days"),
        ("a month", "Event retention must be a whole number of days"),
    ],
)
def test_it_refuses_a_retention_out_of_range_and_changes_nothing(
    live_server_url, page, project, alice, typed, error
):
    _sign_in(page, live_server_url, "alice", _settings_path(project))
    page.locator("#session-settings textarea[name=error_message]").fill("A new message")
    page.locator("input[name=retention_days]").fill(typed)
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#ss-retention-error")).to_have_text(error)
    expect(page.locator("input[name=retention_days]")).to_have_value(typed)
    expect(page.locator("input[name=retention_days]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#session-settings .saved")).to_have_count(0)
    assert _retention(project) == 30
    assert _stored(project) == (DEFAULT, 300)
    assert not SettingsChange.objects.exists()
    if typed == "0":
        screenshot(page, "7-owner-retention-refused")


def test_it_counts_characters_while_typing(live_server_url, page, project, alice):
    _sign_in(page, live_server_url, "alice", _settings_path(project))
    counter = page.locator("#session-settings [data-char-count]")
    expect(counter).to_have_text("28 / 500")
    textarea = page.locator("#session-settings textarea[name=error_message]")
    textarea.fill("")
    expect(counter).to_have_text("0 / 500")
    textarea.press_sequentially("Hello")
    expect(counter).to_have_text("5 / 500")
    textarea.fill("y" * 501)
    expect(counter).to_have_text("501 / 500")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    screenshot(page, "4-owner-counter-over")
    # After a (refused) save the swapped-in panel counts again.
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#ss-error-message-error")).to_be_visible()
    expect(page.get_by_role("button", name="Preview")).to_be_enabled()
    page.locator("#session-settings textarea[name=error_message]").fill("Bye")
    expect(page.locator("#session-settings [data-char-count]")).to_have_text("3 / 500")


def test_it_previews_the_typed_message_with_speech_synthesis(live_server_url, page, project, alice):
    _sign_in(page, live_server_url, "alice", _settings_path(project))
    page.locator("textarea[name=error_message]").fill("  Please hold on.  ")
    preview = page.get_by_role("button", name="Preview")
    expect(preview).to_be_enabled()
    preview.click()
    assert page.evaluate("window.__spoken") == ["Please hold on."]
    assert _stored(project) == (DEFAULT, 300)  # previewing saves nothing


def test_it_disables_preview_without_speech_synthesis(live_server_url, browser, project, alice):
    context = browser.new_context()
    context.add_init_script("window.SpeechSynthesisUtterance = undefined;")
    page = context.new_page()
    try:
        _sign_in(page, live_server_url, "alice", _settings_path(project))
        expect(page.get_by_role("button", name="Preview")).to_be_disabled()
        expect(page.locator("[data-tts-unavailable]")).to_be_visible()
        expect(page.locator("[data-tts-unavailable]")).to_have_text(
            "Preview needs a browser with speech synthesis."
        )
    finally:
        context.close()


def test_it_shows_a_member_the_values_without_edit_controls(live_server_url, page, project, bob):
    _sign_in(page, live_server_url, "bob", f"/projects/{project.id}/")
    panel = page.locator("#session-settings")
    expect(panel).to_contain_text(DEFAULT)
    expect(panel).to_contain_text("300 seconds")
    expect(panel).to_contain_text("30 days")
    expect(panel).to_contain_text("Only project owners can change these settings.")
    for control in ("form", "textarea", "input", "button[type=submit]", "[hx-post]"):
        expect(panel.locator(control)).to_have_count(0)
    screenshot(page, "5-member-read-only")

    # A member forging the owner's request with a valid CSRF token is still refused.
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({error_message: "Bob was here",
                                              idle_timeout_seconds: "60", retention_days: "1"});
            const response = await fetch(url, {method: "POST", body,
                headers: {"X-CSRFToken": token, "HX-Request": "true"}});
            return response.status;
        }""",
        _settings_path(project),
    )
    assert status == 403
    assert _stored(project) == (DEFAULT, 300)
    assert _retention(project) == 30
    assert not SettingsChange.objects.exists()
    _no_csp_violations(page)
