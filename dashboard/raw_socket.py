"""The server's side of one websocket under Daphne: its unsent bytes, and frames written to it.

Two things ASGI does not give an application, and a live page at scale needs:
- Whether the browser is reading. `send` returns at once and Daphne (Twisted) buffers what
  the kernel will not take, without limit; `RawSocket.backlog` reads the size of that buffer,
  so a page that stopped reading can be left alone and redrawn once it reads again.
- One push made once for 200 pages. Through ASGI, each page's send is encoded, framed and
  logged again by Channels, Daphne and Autobahn (about 80 µs a page under load, the largest
  cost of a push); `RawSocket.write` hands the same ready frame to each page's transport.
- The frame on the wire in the same pass. Twisted's `write` only buffers and registers the
  socket for writing (two `epoll_ctl` calls and a later turn of the loop per page: a tenth of
  a core at 2,000 events/s with 200 pages, py-spy under bench/load.py); a socket with nothing
  buffered is sent to at once, and only what the kernel does not take goes through Twisted.

The middleware puts a `RawSocket` in the socket's scope (`SCOPE_KEY`) when the server is Daphne
and the connection is plain (no per-message compression); elsewhere the scope lacks it and pages
are pushed to through ASGI as before.
"""

from __future__ import annotations

import functools
import socket
import struct

SCOPE_KEY = "errorsink.raw_socket"
# The kernel's send buffer of a live socket, fixed rather than auto-tuned (up to 4 MiB a socket
# on Linux): what a page that stopped reading can hold in the kernel is then known, and Daphne's
# own buffer starts to grow, and is noticed, after this much. 128 KiB is still seconds of
# pushes for any browser that reads.
KERNEL_SEND_BUFFER = 128 * 1024

_TEXT_FIN = 0x81  # FIN bit and opcode 1 (text): RFC 6455 section 5.2


def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked text frame (servers never mask)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _TEXT_FIN, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    return header + payload


class RawSocket:
    def __init__(self, protocol, transport) -> None:
        self.protocol, self.transport = protocol, transport
        # Twisted's TCP (and Unix) transports send this way; others always buffer through write.
        self.can_send_now = hasattr(transport, "writeSomeData")

    def limit_kernel_buffer(self, size: int = KERNEL_SEND_BUFFER) -> None:
        handle = self.transport.getHandle() if hasattr(self.transport, "getHandle") else None
        if isinstance(handle, socket.socket):
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def backlog(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def write(self, frame: bytes) -> bool:
        """Write a whole frame, if the socket is open and between messages; False otherwise
        (the caller then sends through ASGI, which knows what to do in every state)."""
        protocol = self.protocol
        if (
            protocol.state != protocol.STATE_OPEN
            or protocol.send_state != protocol.SEND_STATE_GROUND
            or getattr(protocol, "_perMessageCompress", None) is not None
        ):
            return False
        transport = self.transport
        if self.backlog() or not self._plain_and_open():
            transport.write(frame)  # behind bytes already waiting, or Twisted's to handle
            return True
        sent = transport.writeSomeData(frame)
        if not isinstance(sent, int):
            sent = 0  # the connection is lost: Twisted finds that out on its own write
        if sent < len(frame):
            transport.write(frame[sent:])
        return True

    def _plain_and_open(self) -> bool:
        transport = self.transport
        return (
            self.can_send_now
            and getattr(transport, "TLS", True) is False
            and transport.connected
            and not transport.disconnecting
            and not getattr(transport, "_writeDisconnected", True)
        )


class RawSocketMiddleware:
    """ASGI middleware for the websocket stack: adds the RawSocket when the server allows it."""

    def __init__(self, inner) -> None:
        self.inner = inner  # the name Channels' own middleware uses

    async def __call__(self, scope, receive, send):
        raw = daphne_raw_socket(send)
        if raw is not None:
            raw.limit_kernel_buffer()
            scope = {**scope, SCOPE_KEY: raw}
        return await self.inner(scope, receive, send)


_TRANSPORT_PARTS = ("dataBuffer", "offset", "_tempDataLen", "write")
_PROTOCOL_PARTS = ("state", "STATE_OPEN", "send_state", "SEND_STATE_GROUND")


def daphne_raw_socket(send) -> RawSocket | None:
    """Daphne's `send` is `partial(server.handle_reply, protocol)`: an Autobahn protocol over
    a Twisted transport. Anything else (another server, a test communicator) gives None."""
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    transport = getattr(protocol, "transport", None)
    if not all(hasattr(transport, part) for part in _TRANSPORT_PARTS):
        return None
    if not all(hasattr(protocol, part) for part in _PROTOCOL_PARTS):
        return None
    return RawSocket(protocol, transport)
