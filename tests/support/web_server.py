"""A running `callvault serve` for browser tests: the serve composition root
(:func:`callvault.cli.serve.running_server`) on its own uvloop in a thread, so that a
test can drive it with Playwright's blocking API and place SIPREC calls with the test
SRC from the test's own thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uvloop

from callvault.cli.serve import RunningServer, running_server
from callvault.db.models import Recording
from callvault.settings import Settings, load_settings
from tests.support.audio import voice
from tests.support.live_call import LiveCall, open_call
from tests.support.people import ADMIN, create_staff
from tests.support.ports import rtp_range
from tests.support.processes import wait_for


class _LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class WebServer:
    running: RunningServer
    log_lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.http_port}"

    @property
    def sip_port(self) -> int:
        assert self.running.sip is not None and self.running.sip.udp_port is not None
        return self.running.sip.udp_port

    def print_log(self) -> None:
        print("----- server log -----", *self.log_lines[-400:], "----- end of server log -----", sep="\n")

    def call(self, seconds: float = 4.0, ucid: str | None = None) -> str:
        """A whole SIPREC call from the test SRC (agent alice, customer +1 415 555 0199), sealed;
        returns its recording id. The parties take turns, so each lane has speech and pauses."""
        live = self.open_call(ucid)
        live.send(*conversation(seconds))
        live.hang_up()
        return self.sealed(live)

    def calls_at_once(self, *seconds: float) -> list[str]:
        """Calls of these lengths placed at the same time (each paced in real time, so the
        longest sets how long this takes); their recording ids in the same order."""
        with ThreadPoolExecutor(len(seconds), thread_name_prefix="test-src") as callers:
            return list(callers.map(self.call, seconds))

    def open_call(self, ucid: str | None = None) -> LiveCall:
        return open_call(self.sip_port, ucid=ucid)

    def recording_of(self, live: LiveCall) -> str:
        ids = self.running.sip.recording_ids if self.running.sip else {}
        wait_for(lambda: live.call_id in ids, 10, "the recording of the call")
        return ids[live.call_id]

    def sealed(self, live: LiveCall) -> str:
        recording_id = self.recording_of(live)

        def done() -> bool:
            with self.running.ctx.catalog.read() as session:
                row = session.get(Recording, recording_id)
                return row is not None and row.status != "recording"

        wait_for(done, 60, f"recording {recording_id} to be sealed")
        return recording_id


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """8 kHz agent and customer audio taking turns of one second."""
    n = int(seconds * 8000)
    agent, customer = voice(seconds, 8000, 120.0, 1), voice(seconds, 8000, 210.0, 2)
    turn = (np.arange(n) // 8000) % 2 == 0
    return np.where(turn, agent, 0).astype(np.int16), np.where(turn, 0, customer).astype(np.int16)


def web_settings(data_dir: Path, database_url: str) -> Settings:
    return load_settings(
        env={
            "CALLVAULT_DATA_DIR": str(data_dir),
            "CALLVAULT_DATABASE_URL": database_url,
            "CALLVAULT_SIP_HOST": "127.0.0.1",
            "CALLVAULT_SIP_PORT": "0",
            "CALLVAULT_HTTP_HOST": "127.0.0.1",
            "CALLVAULT_HTTP_PORT": "0",
            "CALLVAULT_RTP_PORTS": rtp_range(100),
            "CALLVAULT_RTP_TIMEOUT": "5",
            "CALLVAULT_MIN_FREE_DISK_MB": "16",
            # No job workers transcribing each call the page tests make (tests/asr covers that).
            "CALLVAULT_JOB_WORKERS": "0",
        }
    )


@contextmanager
def serving(settings: Settings) -> Iterator[WebServer]:
    """The server, with the test staff (tests.support.people) and an admin ``ada``, until the block ends."""
    capture = _LogLines()
    logger = logging.getLogger("callvault")
    logger.addHandler(capture)
    previous = logger.level
    logger.setLevel(logging.INFO)
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"], holder["loop"] = stop, asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as renderer:
            async with running_server(
                settings, first_admin=False, render_executor=renderer, flush_interval=0.2, sip_any_port=True
            ) as running:
                await asyncio.to_thread(_staff, running)
                holder["running"] = running
                ready.set()
                await stop.wait()

    def run() -> None:
        try:
            uvloop.run(main())
        except BaseException as exc:
            holder["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="web-server", daemon=True)
    thread.start()
    try:
        ready.wait(120)
        if "running" not in holder:
            raise RuntimeError(
                f"the server did not start: {holder.get('error')!r}\n" + "\n".join(capture.lines)
            )
        server = WebServer(holder["running"], capture.lines)  # type: ignore[arg-type]
        yield server
    finally:
        loop, stop = holder.get("loop"), holder.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(90)
        logger.removeHandler(capture)
        logger.setLevel(previous)
    assert not thread.is_alive(), "the server did not stop"


def _staff(running: RunningServer) -> None:
    create_staff(running.ctx)
    running.ctx.users.create_user(ADMIN, "ada", "admin", password="ada-vault-passphrase")
