"""The server's listening socket, as asyncio (which uvicorn's workers run on) accepts connections from it."""

import asyncio
import socket

import pytest
import uvicorn

from digitnet.errors import DigitnetError
from digitnet.serve.server import listening_socket


def _config(port: int = 0) -> uvicorn.Config:
    return uvicorn.Config("digitnet.serve.server:app_from_environment", host="127.0.0.1", port=port)


def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY on the server's side of a connection asyncio accepts from listener."""
    async def accept_one() -> int:
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        async with await loop.create_server(Probe, sock=listener):
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted, 60)
            writer.close()
        return nodelay

    return asyncio.run(accept_one())


def test_connections_are_accepted_with_nagle_off():
    """Without it, each answer on a kept-alive connection waited ~40 ms for the client's delayed ACK."""
    assert _accepted_nodelay(listening_socket(_config())) != 0


def test_a_port_in_use_is_one_clear_error():
    taken = listening_socket(_config())
    try:
        with pytest.raises(DigitnetError, match=r"could not listen on 127\.0\.0\.1:\d+ .*choose another --port"):
            listening_socket(_config(taken.getsockname()[1]))
    finally:
        taken.close()
