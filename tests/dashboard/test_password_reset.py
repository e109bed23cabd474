"""Password reset by email in Chromium, through both of errorsink's mailers: the console one
(the default: the mail is in the web process's log) and a real SMTP server on loopback. The link
works once; the new password signs in, the old one no longer does."""

from __future__ import annotations

import quopri
import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/password-reset/[^/\s]+/[^/\s]+/")


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    yield context.new_page()
    context.close()


@pytest.fixture
def alice_with_email(alice):
    alice.email = "alice@example.com"
    alice.save()
    return alice


def _wait_for(find: Callable[[], str | None], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := find():
            return found
        time.sleep(0.1)
    raise AssertionError("no reset link arrived")


def _reset(page: Page, base: str, read_link: Callable[[], str | None], name: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("input[name=email]", "alice@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("h1")).to_have_text("Check your email")
    link = _wait_for(read_link)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    screenshot(page, f"{name}-choose")
    page.get_by_role("button", name="Set the password").click()
    expect(page.locator("h1")).to_have_text("Password set")
    page.goto(link)
    expect(page.locator("h1")).to_have_text("This link does not work")  # single use
    for password, signed_in in (("alice-password", False), (NEW_PASSWORD, True)):
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", password)
        page.click("form.login button[type=submit]")
        expect(page.locator(".who")).to_have_count(1 if signed_in else 0)
    screenshot(page, f"{name}-signed-in")


def test_reset_through_the_console_mailer(page, private_stack, alice_with_email):
    web = private_stack.web(EMAIL_URL="console://")

    def read_link() -> str | None:
        # The mail is printed as sent: quoted-printable, its long lines folded with "=".
        printed = quopri.decodestring(private_stack.log_text(web.proc).encode()).decode()
        found = LINK.search(printed)
        return found.group(0) if found else None

    _reset(page, web.url, read_link, "reset-console")


def test_reset_through_a_real_smtp_server(page, private_stack, mailbox, alice_with_email):
    box, port = mailbox
    web = private_stack.web(EMAIL_URL=f"smtp://127.0.0.1:{port}")

    def read_link() -> str | None:
        for recipients, message in box.messages:
            assert recipients == ["alice@example.com"]
            assert message["Subject"] == "Reset your errorsink password"
            found = LINK.search(message.get_payload(decode=True).decode())
            return found.group(0) if found else None
        return None

    _reset(page, web.url, read_link, "reset-smtp")
