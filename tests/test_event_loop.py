"""Async tests run on the event loop `callvault serve` runs on."""

from __future__ import annotations

import asyncio

import uvloop


async def test_async_tests_run_on_uvloop() -> None:
    # On asyncio's own loop the SIP/TCP transports passed a type check that uvloop's fail.
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
