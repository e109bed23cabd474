"""RawSocket.write: a frame goes to the socket in the same pass when nothing waits before it,
and every byte reaches the wire once and in order whatever the kernel takes (the pushes through
real Daphne are in test_slow_page.py and the browser tests)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import main

from dashboard.raw_socket import RawSocket, text_frame


class Protocol:
    STATE_OPEN, SEND_STATE_GROUND = 1, 0
    state, send_state = STATE_OPEN, SEND_STATE_GROUND


class Transport:
    """Twisted's TCP transport as RawSocket uses it, over a real socket pair: `write` buffers
    (as Twisted does until the loop's next turn), `writeSomeData` is the kernel's send."""

    TLS = False
    connected, disconnecting, _writeDisconnected = True, False, False

    def __init__(self, sock: socket.socket, takes: int | None = None) -> None:
        self.socket, self.takes = sock, takes
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self.buffered: list[bytes] = []

    def writeSomeData(self, data: bytes):
        if self.takes == -1:
            return main.CONNECTION_LOST
        return self.socket.send(data[: self.takes] if self.takes is not None else data)

    def write(self, data: bytes) -> None:
        self.buffered.append(data)
        self._tempDataLen += len(data)

    def flush(self) -> None:
        """What Twisted's loop does next: the buffered bytes, in order."""
        for data in self.buffered:
            self.socket.sendall(data)
        self.buffered, self._tempDataLen = [], 0


@pytest.fixture
def pair():
    server, browser = socket.socketpair()
    browser.settimeout(2)
    yield server, browser
    server.close()
    browser.close()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_a_frame_is_on_the_wire_before_the_loop_turns(pair):
    server, browser = pair
    transport = Transport(server)
    frame = text_frame("<tr>row</tr>")
    assert RawSocket(Protocol(), transport).write(frame)
    assert transport.buffered == []  # nothing left for Twisted's next turn
    assert _read(browser, len(frame)) == frame


def test_what_the_kernel_does_not_take_follows_through_twisted(pair):
    server, browser = pair
    transport = Transport(server, takes=10)
    frame = text_frame("x" * 500)
    RawSocket(Protocol(), transport).write(frame)
    assert transport.buffered == [frame[10:]]
    transport.flush()
    assert _read(browser, len(frame)) == frame


def test_a_frame_waits_behind_bytes_already_buffered(pair):
    server, browser = pair
    transport = Transport(server, takes=4)
    raw = RawSocket(Protocol(), transport)
    first, second = text_frame("first push"), text_frame("second push")
    raw.write(first)
    raw.write(second)  # the first one's rest is still buffered: the second goes after it
    assert transport.buffered == [first[4:], second]
    transport.flush()
    assert _read(browser, len(first) + len(second)) == first + second


@pytest.mark.parametrize("change", ["lost", "tls", "closing"])
def test_a_socket_twisted_must_handle_gets_the_whole_frame_buffered(pair, change):
    server, browser = pair
    transport = Transport(server, takes=-1 if change == "lost" else None)
    transport.TLS = change == "tls"
    transport.disconnecting = change == "closing"
    frame = text_frame("push")
    RawSocket(Protocol(), transport).write(frame)
    assert transport.buffered == [frame]
    browser.setblocking(False)
    with pytest.raises(BlockingIOError):
        browser.recv(1)  # nothing went around Twisted


def test_a_page_between_messages_only(pair):
    server, _ = pair
    protocol = Protocol()
    protocol.send_state = 1  # a message of Autobahn's own is half sent
    assert RawSocket(protocol, Transport(server)).write(text_frame("push")) is False
