"""API keys: the service, `createapikey`, and the dashboard page for alice, bob and charlie."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from errorsink.projects.api_keys import ApiKeyInvalid, api_key_authenticate, api_key_create
from errorsink.projects.models import ApiKey
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_it_stores_only_a_prefix_and_a_hash(project):
    key, plaintext = api_key_create(project=project, scopes="errors:read", name="ci")
    assert plaintext.startswith(f"es_{key.prefix}_")
    assert len(plaintext) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert stored.scopes == ["errors:read"]


def test_it_orders_and_deduplicates_scopes_and_refuses_unknown_ones(project):
    key, _ = api_key_create(project=project, scopes=["settings:read", "errors:read", "errors:read"])
    assert key.scopes == ["errors:read", "settings:read"]
    with pytest.raises(ApiKeyInvalid, match="errors:delete"):
        api_key_create(project=project, scopes="errors:read,errors:delete")
    with pytest.raises(ApiKeyInvalid):
        api_key_create(project=project, scopes=[])


def test_it_authenticates_only_the_exact_key(project):
    key, plaintext = api_key_create(project=project, scopes="errors:read")
    assert api_key_authenticate(plaintext=plaintext).pk == key.pk
    assert api_key_authenticate(plaintext=plaintext + "x") is None
    assert api_key_authenticate(plaintext=plaintext.upper()) is None


def test_createapikey_prints_a_working_key(project):
    out = StringIO()
    call_command("createapikey", "--project", str(project.id), "--scopes",
                 "errors:read,settings:read", "--name", "deploy", stdout=out)  # fmt: skip
    plaintext = out.getvalue().strip()
    key = ApiKey.objects.get(prefix=plaintext[3:11])
    assert key.name == "deploy" and key.scopes == ["errors:read", "settings:read"]
    assert ApiClient(plaintext).get(f"/projects/{project.id}/session-errors").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "00000000-0000-0000-0000-000000000000", "--scopes", "errors:read"],
         "no project"),
        (["--project", "nope", "--scopes", "errors:read"], "no project"),
        (["--project", "{pid}", "--scopes", "errors:admin"], "unknown scope"),
    ],
)  # fmt: skip
def test_createapikey_refuses_bad_input(project, args, message):
    args = [arg.replace("{pid}", str(project.id)) for arg in args]
    with pytest.raises(CommandError, match=message):
        call_command("createapikey", *args, stdout=StringIO())


def _client(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _url(project) -> str:
    return reverse("api-keys", args=[project.id])


def test_it_shows_the_keys_to_the_owner_with_the_create_form(alice, project):
    key, _ = api_key_create(project=project, scopes="errors:read", name="<b>ci</b>")
    page = _client(alice).get(_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"es_{key.prefix}_" in html
    assert "&lt;b&gt;ci&lt;/b&gt;" in html and "<b>ci</b>" not in html
    assert 'name="scopes"' in html and "Revoke" in html
    assert key.key_hash not in html


def test_it_creates_a_key_for_the_owner_and_shows_it_once(alice, project):
    client = _client(alice)
    response = client.post(_url(project), {"name": "deploy", "scopes": ["errors:read"]})
    # Post/Redirect/Get: a reload of the page that shows the key cannot create another.
    assert response.status_code == 302 and response.url == _url(project)
    page = client.get(response.url)
    key = ApiKey.objects.get(project=project)
    plaintext = page.context["new_plaintext"]
    html = page.content.decode()
    assert plaintext in html
    assert "export ERRORSINK_URL=http://localhost ERRORSINK_PROJECT=" in html
    assert key.created_by == alice and key.scopes == ["errors:read"]
    reloaded = client.get(_url(project)).content.decode()
    assert plaintext not in reloaded and ApiKey.objects.count() == 1
    assert ApiClient(plaintext).get(f"/projects/{project.id}/session-errors").status_code == 200


def test_it_explains_a_key_without_scopes(alice, project):
    response = _client(alice).post(_url(project), {"name": "x"})
    assert response.status_code == 422
    assert "at least one scope" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_it_lets_the_owner_revoke_a_key(alice, project):
    key, plaintext = api_key_create(project=project, scopes="errors:read")
    url = reverse("api-key-revoke", args=[project.id, key.pk])
    response = _client(alice).post(url)
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert ApiClient(plaintext).get(f"/projects/{project.id}/session-errors").status_code == 401
    assert "revoked" in _client(alice).get(_url(project)).content.decode()


def test_it_shows_members_the_list_read_only(bob, project):
    key, _ = api_key_create(project=project, scopes="errors:read")
    page = _client(bob).get(_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"es_{key.prefix}_" in html
    assert 'name="scopes"' not in html and "Revoke" not in html


def test_it_refuses_members_creating_or_revoking(bob, project):
    key, _ = api_key_create(project=project, scopes="errors:read")
    client = _client(bob)
    assert client.post(_url(project), {"scopes": ["errors:read"]}).status_code == 403
    revoke = reverse("api-key-revoke", args=[project.id, key.pk])
    assert client.post(revoke).status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_it_hides_the_page_from_outsiders(charlie, project):
    key, _ = api_key_create(project=project, scopes="errors:read")
    client = _client(charlie)
    assert client.get(_url(project)).status_code == 404
    assert client.post(_url(project), {"scopes": ["errors:read"]}).status_code == 404
    revoke = reverse("api-key-revoke", args=[project.id, key.pk])
    assert client.post(revoke).status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_it_refuses_revoking_another_projects_key_through_your_own(alice, project, other_project):
    key, _ = api_key_create(project=other_project, scopes="errors:read")
    url = reverse("api-key-revoke", args=[project.id, key.pk])
    assert _client(alice).post(url).status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_it_sends_anonymous_visitors_to_sign_in(project):
    response = Client(HTTP_HOST="localhost").get(_url(project))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_new_keys_plaintext_never_reaches_the_database_or_a_cache(alice, project):
    """Even when the redirect after "Create key" is not followed, no session row holds the
    plaintext; the page that shows it tells every cache not to keep it."""
    from django.contrib.sessions.models import Session

    client = _client(alice)
    response = client.post(_url(project), {"name": "deploy", "scopes": ["errors:read"]})
    assert response.status_code == 302  # and not followed
    key = ApiKey.objects.get(project=project)
    sessions = " ".join(str(s.get_decoded()) for s in Session.objects.all())
    assert f"es_{key.prefix}_" not in sessions
    page = client.get(_url(project))
    plaintext = page.context["new_plaintext"]
    assert plaintext.startswith(f"es_{key.prefix}_") and plaintext[12:] not in sessions
    assert "no-store" in page["Cache-Control"]
    assert plaintext not in client.get(_url(project)).content.decode()
