"""A real HTTP webhook receiver on loopback: records every request, answers as told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.requests: list[Received] = []
        # Status codes to answer, first to last; the last one repeats.
        self.answers: list[int] = [200]
        self._arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/callvault?src=test"

    def answer(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def arrived(self, received: Received) -> None:
        with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()

    def wait_for(self, count: int, within: float = 30.0, event_type: str | None = None) -> list[Received]:
        """The first ``count`` requests (of ``event_type``), waiting for them to arrive."""
        deadline = time.monotonic() + within
        with self._arrived:
            while True:
                matching = [
                    r for r in self.requests if event_type is None or r.event.get("type") == event_type
                ]
                if len(matching) >= count:
                    return matching[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(matching)} of {count} webhook requests arrived: {self.requests}"
                    )
                self._arrived.wait(left)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status = receiver.answer()
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.arrived(Received(time.monotonic(), self.path, headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
