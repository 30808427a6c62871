"""Webhook throughput: events queued in the catalog outbox and delivered, signed, per second.

Run: ``python bench/webhooks.py [--events 2000] [--db sqlite,postgresql]``. Prints figures; not a test.

End to end through the real parts: a service context on a fresh catalog (SQLite in a
temporary directory, or a fresh schema in the PostgreSQL database named by
``CALLVAULT_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
one subscription, and ``serve``'s :class:`WebhookDispatcher` on uvloop posting to a
receiver on loopback. The receiver is a minimal HTTP/1.1 server in its own process
(answers 200 to every POST) so that its cost is not charged to the sender's core.

* enqueue: each event is published inside its own write transaction
  (``EventBus.publish_in``), as a seal does: one outbox row committed per event.
* enqueue + deliver: the events are published from a thread while the dispatcher
  runs; the clock stops when the catalog says every delivery is ``delivered``.
* baseline (same run, same receiver, same concurrency): the same signed bodies POSTed
  straight from an httpx client, with no catalog at all: what the outbox costs on top.

Each figure is given per wall-clock second and per CPU second of the callvault process
(all its threads; not the receiver's, nor the PostgreSQL server's): on a shared machine
the second is the one that does not depend on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import cast

import httpx
import uvloop
from sqlalchemy import create_engine, func, select, text

from callvault.db.webhook_models import WebhookDelivery
from callvault.runtime.webhooks.delivery import WebhookDispatcher
from callvault.services.access import Principal
from callvault.services.context import ServiceContext, open_context
from callvault.services.webhook_signing import signature_header
from callvault.settings import load_settings

POSTGRES_URL = os.environ.get(
    "CALLVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONCURRENCY = 16
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class _Receiver(asyncio.Protocol):
    """Answers 200 to each complete request (headers + Content-Length body), keep-alive."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.transport.write(RESPONSE)


def _serve_receiver(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Receiver, sock=sock)
        await server.serve_forever()

    uvloop.run(main())


def _start_receiver() -> tuple[mp.process.BaseProcess, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    process = mp.get_context("fork").Process(target=_serve_receiver, args=(sock,), daemon=True)
    process.start()
    port = int(sock.getsockname()[1])
    sock.close()
    return process, port


def _delivered(ctx: ServiceContext) -> int:
    with ctx.catalog.read() as session:
        query = select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered")
        return int(session.scalar(query) or 0)


def _publish(ctx: ServiceContext, events: int) -> float:
    started = time.perf_counter()
    for n in range(events):
        with ctx.catalog.write() as session:
            ctx.events.publish_in(session, "recording.sealed", {"recording_id": str(uuid.UUID(int=n))})
    return time.perf_counter() - started


async def _deliver(ctx: ServiceContext, events: int) -> tuple[float, float, float]:
    """(seconds to enqueue, seconds from the first publish until all are delivered, CPU seconds)."""
    dispatcher = WebhookDispatcher(ctx.webhooks, ctx.webhook_outbox, ctx.settings)
    await dispatcher.start()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        enqueue = await asyncio.to_thread(_publish, ctx, events)
        # Outcomes are only in the catalog: poll it.
        while await asyncio.to_thread(_delivered, ctx) < events:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return enqueue, time.perf_counter() - started, time.process_time() - cpu
    finally:
        await dispatcher.stop()


async def _baseline(url: str, events: int) -> tuple[float, float]:
    """The same number of signed POSTs, straight from httpx: no catalog, no outbox."""
    body = b'{"data":{"recording_id":"00000000-0000-0000-0000-000000000000"},"type":"recording.sealed"}'
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY), trust_env=False) as client:

        async def one() -> None:
            async with limit:
                headers = {"Callvault-Signature": signature_header("s" * 32, body, int(time.time()))}
                response = await client.post(url, content=body, headers=headers)
                assert response.status_code == 200

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(events)))
        return time.perf_counter() - started, time.process_time() - cpu


def _database(backend: str, tmp: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return "", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop(schema: str | None) -> None:
    if schema:
        with create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def run(backend: str, events: int, port: int) -> None:
    url = f"http://127.0.0.1:{port}/hook"
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        database_url, schema = _database(backend, Path(tmp))
        try:
            settings = load_settings(
                env={
                    "CALLVAULT_DATA_DIR": str(Path(tmp) / "data"),
                    "CALLVAULT_DATABASE_URL": database_url,
                    "CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                    "CALLVAULT_WEBHOOK_CONCURRENCY": str(CONCURRENCY),
                }
            )
            ctx = open_context(settings)
            try:
                ctx.webhooks.create(Principal.system(), url, ["recording.sealed"])
                enqueue, total, cpu = uvloop.run(_deliver(ctx, events))
            finally:
                ctx.close()
        finally:
            _drop(schema)
    baseline, baseline_cpu = uvloop.run(_baseline(url, events))
    print(
        f"{backend:<10}  enqueue {events / enqueue:7,.0f}/s  enqueue+deliver {events / total:7,.0f}/s "
        f"({events / cpu:7,.0f} per CPU-s)   baseline: httpx POSTs, no outbox {events / baseline:7,.0f}/s "
        f"({events / baseline_cpu:7,.0f} per CPU-s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    receiver, port = _start_receiver()
    try:
        print(
            f"{args.events} events, one subscription, {CONCURRENCY} deliveries in flight, receiver on loopback"
        )
        for backend in args.db.split(","):
            run(backend.strip(), args.events, port)
    finally:
        receiver.terminate()
        receiver.join(5)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
