"""The project page shows its Sentry DSN with an example (docs/sentry.md); owners rotate the
key through a confirmed POST that redirects, members cannot, outsiders see nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from errorsink.sentry.keys import SentryKey, sentry_key_for

pytestmark = pytest.mark.django_db


def _page(client, project) -> str:
    return client.get(reverse("project", args=[project.id])).content.decode()


def test_members_see_the_dsn_and_an_example_that_uses_it(client, bob, project):
    client.force_login(bob)
    key = sentry_key_for(project)
    dsn = f"http://{key.public_key}@testserver/{key.id}"
    html = _page(client, project)
    assert f'<code id="sentry-dsn">{dsn}</code>' in html
    assert 'data-copy-from="sentry-dsn"' in html
    assert f"sentry_sdk.init(dsn=&quot;{dsn}&quot;, release=" in html
    assert "sentry_sdk.set_tag(&quot;session_id&quot;" in html
    assert "Rotate the Sentry key" not in html  # owners only


def test_a_new_project_has_its_key_from_the_start(project):
    assert SentryKey.objects.filter(project=project).count() == 1


def test_an_owner_rotates_the_key_and_the_page_shows_the_new_dsn(client, alice, project):
    client.force_login(alice)
    old = sentry_key_for(project).public_key
    assert "Rotate the Sentry key" in _page(client, project)
    response = client.post(reverse("sentry-key-rotate", args=[project.id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("project", args=[project.id])
    new = sentry_key_for(project).public_key
    assert new != old
    html = client.get(response["Location"]).content.decode()
    assert new in html and old not in html and "SDKs still sending the old one" in html


def test_members_cannot_rotate_and_outsiders_get_a_404(client, bob, charlie, project):
    old = sentry_key_for(project).public_key
    url = reverse("sentry-key-rotate", args=[project.id])
    client.force_login(bob)
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    client.force_login(charlie)
    assert client.post(url).status_code == 404
    client.logout()
    assert client.post(url).status_code == 302  # to sign-in
    assert sentry_key_for(project).public_key == old
