"""Ports of the embedded services: recorded per checkout, replaced when something took them."""

from __future__ import annotations

import socket

from errorsink.embedded import _choose_port


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_keeps_the_recorded_port_while_it_is_free_or_ours(tmp_path):
    record = tmp_path / "svc.port"
    port = _choose_port(record, _unused_port(), running=False)
    assert record.read_text() == str(port)
    assert _choose_port(record, _unused_port(), running=False) == port
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
