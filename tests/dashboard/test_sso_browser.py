"""Single sign-on in Chromium against a real OpenID Connect provider on loopback
(tests/oidc_provider.py): Daphne is configured for it by environment only, as an operator would.

An invited person signs in through the provider and lands in the project they were invited to;
someone the provider knows but nobody invited gets no account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from errorsink.projects.models import Membership
from errorsink.projects.team import invitation_create
from tests.conftest import screenshot
from tests.oidc_provider import OidcProvider, Person

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CLIENT_ID, SECRET = "errorsink-test", "idp-client-secret"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    people = [Person("dana", "dana-at-idp", "dana@example.com"),
              Person("erin", "erin-at-idp", "erin@example.com"),
              Person("mallory", "mallory-at-idp", "mallory@example.com")]  # fmt: skip
    provider = OidcProvider(client_id=CLIENT_ID, secret=SECRET, people=people)
    yield provider
    provider.stop()


@pytest.fixture
def sso_url(private_stack, idp) -> str:
    """Daphne with the provider configured the way docs/teams.md tells an operator to."""
    web = private_stack.web(
        ERRORSINK_OIDC_URL=idp.discovery_url, ERRORSINK_OIDC_NAME="Loopback IdP",
        ERRORSINK_OIDC_CLIENT_ID=CLIENT_ID, ERRORSINK_OIDC_SECRET=SECRET,
    )  # fmt: skip
    return web.url


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _through_the_idp(page: Page, username: str) -> None:
    page.get_by_role("button", name="Loopback IdP").click()
    expect(page.locator("h1")).to_have_text("Loopback IdP: sign in")
    page.fill("input[name=login]", username)
    page.fill("input[name=secret]", f"{username}-at-idp")
    page.get_by_role("button", name="Sign in to the IdP").click()


def test_the_invitation_link_then_the_provider(page, sso_url, idp, project, alice,
                                               django_user_model):  # fmt: skip
    # A password account with the same address stays as it is: the provider's is another one.
    local = django_user_model.objects.create_user("dana", "dana@example.com", "dana-password")
    made = invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    page.goto(f"{sso_url}/invite/{made.token}/")
    expect(page.locator("h1")).to_have_text("Join Voice bot")
    screenshot(page, "sso-invitation")
    _through_the_idp(page, "dana")
    page.wait_for_url(f"{sso_url}/projects/{project.id}/")
    expect(page.locator(".flash", has_text="You joined Voice bot as member")).to_have_count(1)
    screenshot(page, "sso-landed")
    dana = get_user_model().objects.exclude(id=local.id).get(email="dana@example.com")
    expect(page.locator(".who")).to_have_text(dana.username)
    assert project.role_of(dana) == Membership.MEMBER and not dana.has_usable_password()
    local.refresh_from_db()
    assert local.check_password("dana-password") and project.role_of(local) is None
    assert idp.refused == []


def test_a_verified_address_with_an_invitation_is_enough(page, sso_url, project, alice):
    invitation_create(project=project, email="erin@example.com", role="owner", by=alice)
    page.goto(f"{sso_url}/login/")
    _through_the_idp(page, "erin")
    page.wait_for_url(f"{sso_url}/projects/{project.id}/")
    erin = get_user_model().objects.get(email="erin@example.com")
    assert project.role_of(erin) == Membership.OWNER
    # Signing out and in again through the provider is the same account, no second one.
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{sso_url}/login/")
    _through_the_idp(page, "erin")
    page.wait_for_url(f"{sso_url}/")
    assert get_user_model().objects.filter(email="erin@example.com").count() == 1


def test_nobody_invited_gets_no_account(page, sso_url, project):
    page.goto(f"{sso_url}/login/")
    _through_the_idp(page, "mallory")
    expect(page.locator("h1")).to_have_text("No account for you here yet")
    screenshot(page, "sso-not-invited")
    assert not get_user_model().objects.filter(email="mallory@example.com").exists()
