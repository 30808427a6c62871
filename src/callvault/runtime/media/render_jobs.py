"""Render jobs: the worker-process entry points of the one renderer (:mod:`.renderer`).

The renderer of each journal stays in the memory of the process that runs
its jobs (the engine pins every session to one worker, see
:mod:`.render_pool`), so :func:`advance_recording` continues where the last
step stopped. :func:`finish_recording` finishes it at hang-up; a worker that
lost the state (it died and was replaced, or a step failed) simply starts
again from the journal's first byte. :func:`render_journal` is crash
recovery: the same renderer, started from the first byte and finished at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from callvault.runtime.media.renderer import JournalRenderer
from callvault.runtime.media.tracks import RenderedRecording, RenderOptions

_RENDERS: dict[str, JournalRenderer] = {}
_RENDERS_LOCK = threading.Lock()


def advance_recording(path: str, key: bytes, options: RenderOptions, now: float | None = None) -> float:
    """Advance the call-time render of the journal at ``path`` (sealed under ``key``); returns the seconds rendered so far."""
    with _RENDERS_LOCK:
        render = _RENDERS.get(path)
        if render is None:
            render = _RENDERS[path] = JournalRenderer(Path(path), key, options)
    try:
        render.advance(now)
    except BaseException:
        # Half-done state is not trusted: the hang-up renders again from the journal.
        with _RENDERS_LOCK:
            _RENDERS.pop(path, None)
        render.close()
        raise
    return render.rendered_seconds


def finish_recording(path: str, key: bytes, options: RenderOptions) -> RenderedRecording:
    """Finish the journal's render up to ``options.ended_at`` (starting afresh if this process has none)."""
    with _RENDERS_LOCK:
        render = _RENDERS.pop(path, None)
    if render is None:
        render = JournalRenderer(Path(path), key, options)
    # Only known at hang-up: the storage losses capture could not journal.
    render.options = dataclasses.replace(render.options, spool_losses=options.spool_losses)
    try:
        return render.finish(options.ended_at)
    finally:
        render.close()


def render_journal(path: str, key: bytes, options: RenderOptions) -> RenderedRecording:
    """Render a whole journal from its first byte (crash recovery, or a hang-up render that failed).

    ``options.ended_at`` None ends the recording at its last audio. The
    journal is not deleted here.
    """
    began = time.perf_counter()
    render = JournalRenderer(Path(path), key, options)
    try:
        rendered = render.finish(options.ended_at)
    finally:
        render.close()
    rendered.timings["total"] = time.perf_counter() - began
    return rendered


def live_renders() -> int:
    """Journals this process is rendering (for tests)."""
    with _RENDERS_LOCK:
        return len(_RENDERS)
