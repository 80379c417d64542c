"""BackgroundServer: the demo API served by uvicorn in a thread of its own.

Apart from the run because the tests and the ASGI benchmark serve apps the same way.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, Final, Self

import uvicorn

SERVER_START_TIMEOUT_S: Final = 10.0
DRAIN_TIMEOUT_S: Final = 5.0


class BackgroundServer:
    """uvicorn on 127.0.0.1 and a port the OS picks, in a daemon thread with its own loop.

    The load generator runs on the main thread's loop, so the server's
    latencies are not those of a loop shared with its own client.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1") -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(DRAIN_TIMEOUT_S),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="wedsync-demo-server")
        self._thread.daemon = True
        self.host = host

    def start(self, *, timeout_s: float = SERVER_START_TIMEOUT_S) -> Self:
        """Start serving; return once the socket listens (uvicorn's ``started``)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn stopped before it was serving (see its log above)")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"uvicorn was not serving after {timeout_s:g} s")
            self._thread.join(0.01)  # wakes at once if the server thread dies
        return self

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def stopping(self) -> bool:
        """Whether the server was asked to stop (by `stop` or a signal it caught)."""
        return bool(self._server.should_exit)

    def stop(self) -> None:
        """Ask uvicorn to finish its requests and exit; wait for it (bounded)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(DRAIN_TIMEOUT_S + 5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
