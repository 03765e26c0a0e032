"""Running the app: uvicorn with one or more worker processes, and deadlines for slow clients."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from digitnet.errors import DigitnetError
from digitnet.runs import load_run
from digitnet.serve.app import DEFAULT_REQUEST_TIMEOUT, create_app

RUN_ENV = "DIGITNET_SERVE_RUN"
TIMEOUT_ENV = "DIGITNET_SERVE_REQUEST_TIMEOUT"
MAX_CONNECTIONS = 512  # per worker; beyond it uvicorn answers 503 at once


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head: a client that has not sent
    a complete request line and headers within the request timeout of connecting (or of its
    previous response) is disconnected. uvicorn itself waits for a head forever. The body has its
    own deadline in the app."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_deadline = None
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        seconds = float(os.environ.get(TIMEOUT_ENV, DEFAULT_REQUEST_TIMEOUT))
        self._head_deadline = self.loop.call_later(seconds, self._head_too_slow)

    def _head_too_slow(self) -> None:
        if self.cycle is None or self.cycle.response_complete:  # still waiting for a request head
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)


def app_from_environment():
    """The app factory each worker process calls (uvicorn needs an import string for workers > 1)."""
    return create_app(os.environ[RUN_ENV], float(os.environ.get(TIMEOUT_ENV, DEFAULT_REQUEST_TIMEOUT)))


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The server's socket, bound and listening: connections queue from now on, even before a worker
    accepts them. Marked as TCP, which uvicorn's bind_socket leaves unsaid: asyncio turns Nagle's
    algorithm off only on connections accepted from a socket that says so, and without that each
    answer on a kept-alive connection waited some 40 ms for the client's delayed acknowledgement
    (Kludex/uvicorn#3149)."""
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit):
        raise DigitnetError(f"could not listen on {config.host}:{config.port} (in use, or not an address of this "
                            "machine); choose another --port or --host") from None
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    sock.listen(config.backlog)
    return sock


def run_server(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int | None = None,
               request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
    """Serve until interrupted; prints the address once listening (the real port when port is 0).

    With several workers, uvicorn binds the socket once and forks worker processes that share it,
    each with its own copy of the model: the CPU-bound preparation then runs on every core.
    """
    load_run(run_dir)  # a bad run folder fails here, with its own message, before anything starts
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise DigitnetError(f"--workers {workers}: must be at least 1")
    if not request_timeout > 0:
        raise DigitnetError(f"--request-timeout {request_timeout}: must be a positive number of seconds")
    os.environ[RUN_ENV] = str(Path(run_dir).resolve())
    os.environ[TIMEOUT_ENV] = str(request_timeout)
    config = uvicorn.Config("digitnet.serve.server:app_from_environment", factory=True, host=host, port=port,
                            workers=workers, log_level="warning", access_log=False, http=DeadlineH11Protocol,
                            limit_concurrency=MAX_CONNECTIONS)
    sock = listening_socket(config)
    bound = sock.getsockname()[1]
    print(f"digitnet: serving {run_dir} on http://{host}:{bound}/ with {workers} worker"
          f"{'s' if workers > 1 else ''} (Ctrl-C stops)", flush=True)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    try:
        supervisor = Multiprocess(config, sockets=[sock])
    except TypeError:  # uvicorn < 0.36 also wants the target
        supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])
    supervisor.run()
