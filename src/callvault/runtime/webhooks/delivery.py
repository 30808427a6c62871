"""The webhook delivery loop: from the catalog outbox to the receivers, signed, with retries.

Runs on the server's event loop. It claims due rows from the outbox
(:class:`~callvault.services.webhook_outbox.WebhookOutbox`), at most
``CALLVAULT_WEBHOOK_CONCURRENCY`` in flight, and POSTs each one's stored body
to the subscription's URL: resolved and checked again just before sending and
connected to by the checked address (:mod:`~callvault.services.webhook_targets`),
signed afresh per attempt (:mod:`~callvault.services.webhook_signing`), no
redirects followed, the answer's body never read. A 2xx answer is delivered;
anything else (another status, a timeout, a refused connection, a target that
now resolves to a private address) is retried after an exponential backoff with
jitter, honouring a ``Retry-After`` that asks for longer, until
``CALLVAULT_WEBHOOK_MAX_ATTEMPTS``, then the delivery is ``failed``.

The outbox rings a doorbell when new rows commit, so an event goes out at
once; without it the loop looks for due retries every second. On stop,
attempts in flight are cancelled and their rows handed back, due at once at
the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from callvault import __version__
from callvault.errors import CallvaultError
from callvault.services.webhook_outbox import DueDelivery, WebhookOutbox
from callvault.services.webhook_signing import SIGNATURE_HEADER, signature_header
from callvault.services.webhook_targets import resolve_target
from callvault.services.webhooks import WebhookService
from callvault.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LEASE_MARGIN = 30.0  # beyond the request timeout, before a claimed row is taken as abandoned


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_max_attempts,
            settings.webhook_backoff_seconds,
            float(settings.webhook_backoff_max_seconds),
        )

    def delay(self, attempts: int, retry_after: float | None, rng: Callable[[], float]) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts, or None once they are used up.

        Equal jitter: half the exponential step is kept, the other half drawn at random,
        so receivers recovering from an outage are not hit by every sender at once.
        """
        if attempts >= self.max_attempts:
            return None
        step = min(self.max_seconds, self.base_seconds * 2.0 ** (attempts - 1))
        wait: float = step / 2 + rng() * step / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_seconds))
        return wait


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class WebhookDispatcher:
    def __init__(
        self,
        webhooks: WebhookService,
        outbox: WebhookOutbox,
        settings: Settings,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._webhooks = webhooks
        self._outbox = outbox
        self._policy = RetryPolicy.from_settings(settings)
        self._timeout = float(settings.webhook_timeout)
        self._concurrency = settings.webhook_concurrency
        self._rng = rng
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._doorbell = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would bypass the address pinning
            limits=httpx.Limits(max_connections=self._concurrency),
        )
        self._outbox.add_listener(self._ring)
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    def _ring(self) -> None:
        """Called from any thread when rows were queued."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is stopping
                loop.call_soon_threadsafe(self._doorbell.set)

    async def stop(self) -> None:
        self._outbox.remove_listener(self._ring)
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        cut_short = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.to_thread(self._outbox.release, cut_short)
        except CallvaultError as exc:  # the lease runs out instead
            log.warning("webhooks: could not hand back %d deliveries: %s", len(cut_short), exc.message)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            self._doorbell.clear()
            free = self._concurrency - len(self._inflight)
            claimed: list[DueDelivery] = []
            if free > 0:
                try:
                    claimed = await asyncio.to_thread(
                        self._outbox.claim_due, free, self._timeout + LEASE_MARGIN
                    )
                except CallvaultError as exc:  # catalog busy or down: try again later
                    log.warning("webhooks: cannot read the outbox: %s", exc.message)
                for due in claimed:
                    self._launch(due)
                if claimed and len(claimed) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._doorbell.wait(), POLL_SECONDS)

    def _launch(self, due: DueDelivery) -> None:
        task = asyncio.create_task(self._attempt(due), name=f"webhook-{due.id}")
        self._inflight[due.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._inflight.pop(due.id, None)
            self._doorbell.set()  # a slot is free

        task.add_done_callback(done)

    async def _attempt(self, due: DueDelivery) -> None:
        status_code, error, retry_after = await self._send(due)
        retry_at: datetime | None = None
        if error is not None:
            wait = self._policy.delay(due.attempts + 1, retry_after, self._rng)
            if wait is not None:
                retry_at = datetime.now(UTC) + timedelta(seconds=wait)
            log.warning(
                "webhook delivery %d (%s) attempt %d failed: %s; %s",
                due.id,
                due.event_type,
                due.attempts + 1,
                error,
                f"retry in {wait:.1f} s" if wait is not None else "giving up",
            )
        try:
            await asyncio.to_thread(self._outbox.record_attempt, due.id, status_code, error, retry_at)
        except CallvaultError as exc:  # the lease runs out and the row is sent again
            log.error("webhooks: outcome of delivery %d not recorded: %s", due.id, exc.message)

    async def _send(self, due: DueDelivery) -> tuple[int | None, str | None, float | None]:
        """(HTTP status, error or None for delivered, Retry-After seconds) of one attempt."""
        assert self._client is not None
        try:
            secret = self._webhooks.secret_of(due.subscription_id, due.secret_sealed)
            target = await asyncio.to_thread(resolve_target, due.url, self._webhooks.allow_private_targets)
        except CallvaultError as exc:
            return None, exc.message, None
        body = due.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"callvault/{__version__}",
            "Host": target.host_header,
            SIGNATURE_HEADER: signature_header(secret, body, int(time.time())),
            "Callvault-Event-Id": due.event_id,
            "Callvault-Event-Type": due.event_type,
            "Callvault-Delivery-Id": str(due.id),
            "Callvault-Delivery-Attempt": str(due.attempts + 1),
        }
        # Connect to the checked address; TLS still checks the certificate against the host name.
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with self._client.stream(
                "POST", target.connect_url, content=body, headers=headers, extensions=extensions
            ) as response:
                code = response.status_code
                if 200 <= code < 300:
                    return code, None, None
                return code, f"answered HTTP {code}", _retry_after(response)
        except httpx.TimeoutException:
            return None, f"no answer within {self._timeout:.0f} s", None
        except httpx.HTTPError as exc:
            return None, f"request failed: {type(exc).__name__}: {str(exc)[:200]}", None
