"""The API as users reach it: over HTTP from a server started by `callvault serve`'s own
composition root (:func:`callvault.cli.serve.running_server`) on uvloop, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import uvloop

from callvault.cli.serve import running_server
from callvault.services.context import ServiceContext
from tests.support.people import Staff, create_staff


@contextmanager
def serving(ctx: ServiceContext) -> Iterator[int]:
    """Run the server on ``ctx`` (its settings; SIP as configured) in a thread; yields the HTTP port."""
    ready = threading.Event()
    port: list[int] = []
    failure: list[BaseException] = []
    loop_and_stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    renders = ThreadPoolExecutor(1)

    async def main() -> None:
        stop = asyncio.Event()
        async with running_server(
            ctx.settings, ctx=ctx, first_admin=False, render_executor=renders
        ) as server:
            port.append(server.http_port)
            loop_and_stop.append((asyncio.get_running_loop(), stop))
            ready.set()
            await server.wait(stop)

    def run() -> None:
        try:
            uvloop.run(main())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="api-server", daemon=True)
    thread.start()
    ready.wait(120)
    try:
        if failure or not port:
            raise AssertionError(f"the server did not start: {failure}")
        yield port[0]
    finally:
        if loop_and_stop:
            loop, stop = loop_and_stop[0]
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        renders.shutdown()
        assert not thread.is_alive(), "the server did not stop"
        assert not failure, failure


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[httpx.Client]:
    with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield http


@pytest.fixture
def staff(ctx: ServiceContext) -> Staff:
    return create_staff(ctx)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
