"""The load benchmark's hand-framed page socket against a real websocket server: it must see
the same messages a browser would, whatever the framing, and answer pings as one."""

from __future__ import annotations

import asyncio

import pytest

from bench.load import CompactClient

pytestmark = pytest.mark.pure

ROW = '<tr id="event-{pk}" class="error-row"><td>bench~2~{seq}~ handler threw</td></tr>'


async def _serve(ws, pongs: list) -> None:
    assert ws.request.headers["Cookie"] == "sessionid=abc"
    await ws.send("<div>the whole view</div>")  # not a push: never counted
    await ws.send(ROW.format(pk=1, seq=0))
    await ws.send("".join(ROW.format(pk=n, seq=n) for n in range(2, 2000)))  # 64-bit length
    await ws.send([ROW.format(pk=9001, seq=5000)[:20], ROW.format(pk=9001, seq=5000)[20:]])
    pongs.append(await asyncio.wait_for(await ws.ping(b"are you there"), 5))
    await ws.send(ROW.format(pk=9002, seq=5001))
    await ws.wait_closed()


async def _exchange() -> tuple[CompactClient, list]:
    from websockets.asyncio.server import serve

    pongs: list = []
    async with serve(lambda ws: _serve(ws, pongs), "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        client, stop = CompactClient(), asyncio.Event()
        listening = asyncio.create_task(
            client.run(f"ws://127.0.0.1:{port}/ws/", {"Cookie": "sessionid=abc"}, stop)
        )
        for _ in range(500):
            if any("9002" in text for _, text in client.messages):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(listening, 5)
    return client, pongs


def test_each_message_is_seen_once_with_its_rows_and_pings_are_answered():
    client, pongs = asyncio.run(_exchange())
    assert client.ready.is_set()
    texts = [text for _, text in client.messages]
    assert len(texts) == 4  # the first message (the view) is not a push
    assert texts[0] == '<tr id="event-1" bench~2~0~'
    assert texts[1].count("<tr id=") == 1998 and texts[1].endswith('"event-1999" bench~2~1999~')
    assert texts[2] == '<tr id="event-9001" bench~2~5000~'  # two fragments, one message
    assert texts[3] == '<tr id="event-9002" bench~2~5001~'
    assert len(pongs) == 1  # the server's ping was answered
    times = [received for received, _ in client.messages]
    assert times == sorted(times)


def test_a_read_is_timed_when_its_bytes_arrived_not_when_it_was_read():
    import socket
    import time

    from bench.load import SO_TIMESTAMPNS, _kernel_time

    server = socket.create_server(("127.0.0.1", 0))
    reader = socket.create_connection(server.getsockname())
    writer, _ = server.accept()
    with server, reader, writer:
        reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _until_the_kernel_stamps_arrivals(reader, writer)
        # Bracketed: on a busy machine the test itself may be descheduled around the send.
        before = time.perf_counter()
        writer.send(b"a push")
        after = time.perf_counter()
        time.sleep(0.2)  # a busy client reads late
        data, ancillary, _, _ = reader.recvmsg(1024, 64)
        read = time.perf_counter()
    arrived = _kernel_time(ancillary)
    assert data == b"a push"
    assert before - 0.005 <= arrived <= after + 0.005
    assert arrived < read - 0.1


def _until_the_kernel_stamps_arrivals(reader, writer) -> None:
    """Linux turns receive timestamps on for the whole machine when a socket first asks, but
    through deferred work: a packet that arrives before it has run carries no time, and the
    kernel stamps it when it is read. Exchange a warm-up message until one is stamped on
    arrival (the load benchmark's pages ask at connect, long before the pushes they time)."""
    import time

    from bench.load import _kernel_time

    for _ in range(50):
        writer.send(b"warm-up")
        time.sleep(0.02)
        _, ancillary, _, _ = reader.recvmsg(1024, 64)
        if _kernel_time(ancillary) < time.perf_counter() - 0.015:
            return
    raise AssertionError("the kernel never stamped a packet on arrival")
