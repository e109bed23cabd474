"""Behind an https proxy (issue 14): a same-site POST carrying the proxy's scheme header is
accepted once ERRORSINK_TLS is set (tests/config/test_settings.py checks the environment), and
refused without it, as it was."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

HTTPS_PROXY = {
    "HTTP_HOST": "localhost",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_ORIGIN": "https://localhost",
    "HTTP_REFERER": "https://localhost/login/",
}


def _sign_in(client: Client):
    page = client.get(reverse("login"), **HTTPS_PROXY)
    token = page.cookies["csrftoken"].value
    return client.post(reverse("login"), {"username": "alice", "password": "alice-password",
                                          "csrfmiddlewaretoken": token}, **HTTPS_PROXY)  # fmt: skip


def test_a_post_through_an_https_proxy_is_accepted_with_tls_on(alice, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    response = _sign_in(Client(enforce_csrf_checks=True))
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]


def test_without_tls_on_the_same_post_is_refused(alice):
    assert _sign_in(Client(enforce_csrf_checks=True)).status_code == 403
