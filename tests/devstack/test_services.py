"""Ports of the embedded services: recorded per checkout, replaced when something took them."""

from __future__ import annotations

import os
import socket

import pytest

from devstack.processes import free_port
from devstack.services import _choose_port

pytestmark = pytest.mark.pure


def test_it_keeps_the_recorded_port_while_it_is_free_or_ours(tmp_path):
    record = tmp_path / "svc.port"
    port = _choose_port(record, free_port(), running=False)
    assert record.read_text() == str(port)
    assert _choose_port(record, free_port(), running=False) == port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert _choose_port(record, port, running=True) == port  # our own server holds it


def test_it_moves_to_a_free_port_when_another_program_took_the_recorded_one(tmp_path):
    record = tmp_path / "svc.port"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        record.write_text(str(port))

        moved = _choose_port(record, port, running=False)

    assert moved not in (port, 0)
    assert record.read_text() == str(moved)


def test_it_keeps_the_secret_key_readable_by_its_owner_only(tmp_path, monkeypatch):
    from devstack import services

    monkeypatch.setattr(services, "STATE_DIR", tmp_path / "state")
    key = services.secret_key()
    path = tmp_path / "state" / "secret_key"
    assert len(key) >= 50 and path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # as an older checkout wrote it
    assert services.secret_key() == key
    assert path.stat().st_mode & 0o777 == 0o600


def test_commands_beside_a_running_stack_learn_its_address(tmp_path, monkeypatch):
    from devstack import services

    monkeypatch.setenv("ERRORSINK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ERRORSINK_PUBLIC_URL", "")  # unset, and restored after the test
    assert services.remembered_public_url() is None
    services.remember_public_url("http://localhost:8200")  # as `make run` on port 8200 does
    services.activate()
    assert os.environ["ERRORSINK_PUBLIC_URL"] == "http://localhost:8200"

    monkeypatch.setenv("ERRORSINK_PUBLIC_URL", "https://errors.example.com")
    services.activate()  # an address the user set wins
    assert os.environ["ERRORSINK_PUBLIC_URL"] == "https://errors.example.com"
