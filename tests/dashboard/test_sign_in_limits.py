"""Sign-in is rate limited per account and per address (issue 14), by django-axes: after 10 wrong
passwords the right one is refused too, with a page that says why."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _sign_in(username: str, password: str, address: str):
    client = Client(REMOTE_ADDR=address)
    return client.post(reverse("login"), {"username": username, "password": password})


def test_ten_wrong_passwords_lock_the_account_and_the_address(alice, bob):
    for _ in range(9):
        assert _sign_in("alice", "wrong", "10.0.0.1").status_code == 200  # the form again
    assert _sign_in("alice", "wrong", "10.0.0.1").status_code == 429  # the tenth locks
    locked = _sign_in("alice", "alice-password", "10.0.0.1")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    # The account, from anywhere; the address, for any account.
    assert _sign_in("alice", "alice-password", "10.0.0.2").status_code == 429
    assert _sign_in("bob", "bob-password", "10.0.0.1").status_code == 429
    # Another account from another address is not affected.
    assert _sign_in("bob", "bob-password", "10.0.0.3").status_code == 302


def test_a_successful_sign_in_clears_the_count(alice):
    for _ in range(8):
        _sign_in("alice", "wrong", "10.0.0.4")
    assert _sign_in("alice", "alice-password", "10.0.0.4").status_code == 302
    for _ in range(8):
        _sign_in("alice", "wrong", "10.0.0.4")
    assert _sign_in("alice", "alice-password", "10.0.0.4").status_code == 302
