"""Media worker processes: the capture loop spread over several cores.

With ``settings.media_workers`` > 1 the engine replaces its in-process
:class:`~.capture.CaptureLoop` thread by a :class:`CapturePool` of that many
worker processes, each running its own ``CaptureLoop`` (its own GIL, so
capture scales with cores). The pool offers the same methods as the loop, so
the engine and its sessions do not know which one they drive:

* The engine keeps binding the RTP sockets, so ``add_stream`` stays
  synchronous and returns the port at once. The pool passes the socket's file
  descriptor to the worker that owns the port (``socket.send_fds`` over a
  ``SOCK_SEQPACKET`` socket pair, one message per command: message boundaries
  and descriptors travel together).
* Each worker owns an interleaved slice of the RTP port range: even port
  number *i* (counted from the low end) belongs to worker ``i % workers``.
  The port allocator chooses ports at random, so streams spread evenly over
  the workers whatever the slices; interleaving keeps them even as well when
  only part of the range is in use.
* A session's journal is a file opened ``O_APPEND`` by every worker that holds
  one of the session's streams; each ``os.write`` of a record is atomic on a
  local file system, so records of different workers interleave but never
  tear. Rendering and sealing read the file as before and need no change.
* Records are sealed under the session's spool key, which the ``open``
  command carries (the raw key, over the private socket pair; never logged)
  with the worker's writer number (worker *i* is writer *i* + 1, the engine
  writer 0), so no two writers of a journal share a nonce space.
* Closing a session asks each worker holding part of it to drain, flush and
  close its descriptors; the session's ``done`` runs once all have answered.
  An RTP timeout fires once every part of the session has reported one.

Workers use the real clock (a fake engine clock cannot cross processes).
* Silences (:mod:`.withholding`) go to every worker holding part of the
  session, and are replayed to a worker that gets its first stream of the
  session later; a worker that finds keypad digits silences its own streams at
  once and reports it, and the engine relays the interval to the others. The
  parts of a session flush on their own schedules, so a digit found by one
  worker can be up to a flush interval old: workers hold watched streams back
  by a flush interval plus the usual hold-back (a ``kill -9`` then loses up to
  2.25 s instead of 1.25 s), so the relayed silence still finds the other
  streams' packets of that moment in memory.

Commands: ``open``/``add``/``close``/``flush``/``sync``/``silence``/``watch``/``stop``
(engine to worker), ``closed``/``timeout``/``synced``/``digits`` (worker to
engine), JSON encoded.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callvault.log_format import configure_logging
from callvault.runtime.media.capture import CaptureLoop
from callvault.runtime.media.lifeline import watch
from callvault.runtime.media.spool_key import journal_seal
from callvault.runtime.media.withholding import HOLDBACK_SECONDS
from callvault.storage.spool import SpoolWriter

log = logging.getLogger(__name__)

MESSAGE_MAX = 64 * 1024
STOP_TIMEOUT = 10.0
READY_TIMEOUT = 120.0  # a loaded host can take tens of seconds to start Python and import numpy, av


def port_owner(port: int, port_range: tuple[int, int], workers: int) -> int:
    """The worker (0-based) that owns RTP ``port`` of ``port_range``."""
    low = port_range[0] + (port_range[0] & 1)
    return ((port - low) // 2) % workers


def _socket_port(fd: int) -> int:
    probe = socket.socket(fileno=os.dup(fd))
    try:
        port: int = probe.getsockname()[1]
        return port
    finally:
        probe.close()


@dataclass(eq=False)
class _PoolSession:
    path: str
    rtp_timeout: float
    home: int
    spool_key: bytes = field(repr=False)
    parts: set[int] = field(default_factory=set)
    timed_out: set[int] = field(default_factory=set)
    fired: bool = False
    closing: set[int] | None = None
    packets: int = 0
    done: Callable[[int], None] | None = None
    losses: list[dict[str, Any]] = field(default_factory=list)
    stream_workers: dict[int, int] = field(default_factory=dict)  # stream index -> worker
    silences: dict[str, dict[str, Any]] = field(default_factory=dict)  # replayed to a new part


@dataclass(eq=False)
class _Worker:
    number: int
    control: socket.socket
    process: subprocess.Popen[bytes]
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    packets_total: int = 0
    alive: bool = True


class CapturePool:
    """Drives ``workers`` capture processes; every method is safe to call from any thread."""

    def __init__(
        self,
        workers: int,
        port_range: tuple[int, int],
        on_timeout: Callable[[str], None],
        *,
        flush_interval: float = 1.0,
        on_digits: Callable[[str, str, str, float, str], None] | None = None,
        digits_resume: float = 5.0,
    ) -> None:
        if workers < 2:
            raise ValueError("a capture pool needs at least two workers; use CaptureLoop for one")
        if not 0 < flush_interval <= 1.0:
            raise ValueError("flush_interval must be in (0, 1] seconds: the journal must lag at most 1 s")
        self._count = workers
        self._port_range = port_range
        self._on_timeout = on_timeout
        self._on_digits = on_digits
        self._digits_resume = digits_resume
        self._flush_interval = flush_interval
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._sessions: dict[str, _PoolSession] = {}
        self._syncs: dict[int, tuple[set[int], Callable[[], None]]] = {}
        self._next_sync = 0
        self._next_home = 0
        self._losses: dict[str, list[dict[str, Any]]] = {}

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        for number in range(self._count):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "callvault.runtime.media.workers",
                    str(theirs.fileno()),
                    repr(self._flush_interval),
                    str(os.getpid()),
                    repr(self._digits_resume),
                    str(number),
                ],
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
            theirs.close()
            worker = _Worker(number, ours, process)
            worker.reader = threading.Thread(
                target=self._read_replies, args=(worker,), name=f"rtp-worker-{number}", daemon=True
            )
            worker.reader.start()
            self._workers.append(worker)
        # Packets reaching a socket before its worker polls it would get late arrival
        # times, so the engine starts taking calls only once every worker is up.
        for worker in self._workers:
            if not worker.ready.wait(READY_TIMEOUT) or not worker.alive:
                self.stop()
                raise RuntimeError(f"media worker {worker.number} did not start")

    def stop(self) -> None:
        for worker in self._workers:
            self._send(worker, {"op": "stop"})
        for worker in self._workers:
            try:
                worker.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.error("media worker %d did not stop; killing it", worker.number)
                worker.process.kill()
                worker.process.wait()
            if worker.reader is not None:
                worker.reader.join()
            worker.control.close()
        self._workers = []

    def kill(self) -> None:
        """Kill every worker now (a stop that ran out of time); their journals stay for recovery."""
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.kill()
        for worker in self._workers:
            worker.process.wait()
            worker.control.close()
        self._workers = []

    @property
    def workers(self) -> int:
        return self._count

    @property
    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    @property
    def packets_total(self) -> int:
        """Packets written to journals, as of the workers' latest answers (exact after ``call``)."""
        return sum(worker.packets_total for worker in self._workers)

    @property
    def worker_packets(self) -> list[int]:
        return [worker.packets_total for worker in self._workers]

    def owner(self, port: int) -> int:
        return port_owner(port, self._port_range, self._count)

    # -- the capture interface ------------------------------------------------------------

    def open_session(self, key: str, writer: SpoolWriter, rtp_timeout: float, spool_key: bytes) -> None:
        with self._lock:
            # The session is opened in one worker at once even before it has streams, so
            # a session whose streams never come still times out there.
            home = self._next_home
            self._next_home = (home + 1) % self._count
            session = _PoolSession(str(writer.path), rtp_timeout, home, spool_key)
            self._sessions[key] = session
            self._open_part(key, session, home)

    def add_stream(self, key: str, fd: int, index: int) -> None:
        number = self.owner(_socket_port(fd))
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.closing is not None:
                return
            if number not in session.parts:
                self._open_part(key, session, number)
            session.stream_workers[index] = number
            self._send(self._workers[number], {"op": "add", "key": key, "index": index}, fd)

    def silence(
        self, key: str, name: str, streams: frozenset[int] | None, start: float, end: float | None
    ) -> None:
        message = {
            "op": "silence",
            "key": key,
            "name": name,
            "streams": None if streams is None else sorted(streams),
            "start": start,
            "end": end,
        }
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.closing is not None:
                return
            session.silences[name] = message
            if end is not None and len(session.silences) > 64:
                # Ended long ago: a worker that joins the session later holds no packets of then.
                ended = [n for n, m in session.silences.items() if m["end"] is not None]
                for stale in ended[: len(ended) // 2]:
                    del session.silences[stale]
            for number in session.parts:
                self._send(self._workers[number], message)

    def watch_stream(
        self,
        key: str,
        index: int,
        event_types: list[int],
        g711: dict[int, str],
        *,
        consent_event: int = -1,
        pauses: bool = True,
    ) -> None:
        message = {
            "op": "watch",
            "key": key,
            "index": index,
            "events": event_types,
            "g711": g711,
            "consent": consent_event,
            "pauses": pauses,
        }
        with self._lock:
            session = self._sessions.get(key)
            number = session.stream_workers.get(index) if session is not None else None
            if number is not None:
                self._send(self._workers[number], message)

    def close_session(self, key: str, done: Callable[[int], None]) -> None:
        """Flush and forget the session in every worker; ``done(packets)`` runs in a pool thread."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.closing is not None:
                finish = True
            else:
                finish = False
                session.closing = set(session.parts)
                session.done = done
                for number in session.parts:
                    self._send(self._workers[number], {"op": "close", "key": key})
        if finish:
            done(0)

    def flush_all(self) -> None:
        for worker in self._workers:
            self._send(worker, {"op": "flush"})

    def take_losses(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._losses.pop(key, [])

    def live_loss(self, key: str) -> dict[int, dict[str, int]]:
        """Not measured: the workers report only on commands (the live page shows no figure)."""
        return {}

    def call(self, command: Callable[[], None]) -> None:
        """Run ``command`` once every worker has carried out all commands sent before it."""
        with self._lock:
            sync = self._next_sync
            self._next_sync += 1
            self._syncs[sync] = ({w.number for w in self._workers if w.alive}, command)
            for worker in self._workers:
                self._send(worker, {"op": "sync", "id": sync})
        self._settle_sync(sync, None)

    # -- internals --------------------------------------------------------------------------

    def _open_part(self, key: str, session: _PoolSession, number: int) -> None:
        session.parts.add(number)
        message = {
            "op": "open",
            "key": key,
            "path": session.path,
            "rtp_timeout": session.rtp_timeout,
            "spool_key": base64.b64encode(session.spool_key).decode(),
            "writer": number + 1,
        }
        self._send(self._workers[number], message)
        for silence in session.silences.values():
            self._send(self._workers[number], silence)

    def _send(self, worker: _Worker, message: dict[str, Any], fd: int | None = None) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        with worker.send_lock:
            if not worker.alive:
                return
            try:
                if fd is None:
                    worker.control.send(data)
                else:
                    socket.send_fds(worker.control, [data], [fd])
            except OSError as exc:
                log.error("media worker %d is unreachable: %s", worker.number, exc)

    def _read_replies(self, worker: _Worker) -> None:
        while True:
            try:
                data = worker.control.recv(MESSAGE_MAX)
            except OSError:
                data = b""
            if not data:
                break
            try:
                self._on_reply(worker, json.loads(data))
            except Exception:
                log.exception("media worker %d sent a reply that could not be handled", worker.number)
        self._worker_gone(worker)

    def _on_reply(self, worker: _Worker, reply: dict[str, Any]) -> None:
        worker.packets_total = int(reply.get("total", worker.packets_total))
        op = reply["op"]
        if op == "closed":
            losses = list(reply.get("losses", []))
            self._part_closed(str(reply["key"]), worker.number, int(reply["packets"]), losses)
        elif op == "timeout":
            key = str(reply["key"])
            with self._lock:
                session = self._sessions.get(key)
                if session is None or session.fired or session.closing is not None:
                    return
                session.timed_out.add(worker.number)
                fire = session.timed_out >= session.parts
                session.fired = fire
            if fire:
                self._on_timeout(key)
        elif op == "synced":
            self._settle_sync(int(reply["id"]), worker.number)
        elif op == "digits":
            if self._on_digits is not None:
                args = (str(reply["name"]), str(reply["state"]), float(reply["at"]), str(reply["how"]))
                self._on_digits(str(reply["key"]), *args)
        elif op == "ready":
            worker.ready.set()

    def _part_closed(
        self, key: str, number: int, packets: int, losses: list[dict[str, Any]] | None = None
    ) -> None:
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.closing is None:
                return
            session.closing.discard(number)
            session.packets += packets
            session.losses.extend(losses or [])
            if session.closing:
                return
            del self._sessions[key]
            if session.losses:
                self._losses[key] = session.losses
            done = session.done
        if done is not None:
            done(session.packets)

    def _settle_sync(self, sync: int, number: int | None) -> None:
        with self._lock:
            pending = self._syncs.get(sync)
            if pending is None:
                return
            waiting, command = pending
            if number is not None:
                waiting.discard(number)
            if waiting:
                return
            del self._syncs[sync]
        try:
            command()
        except Exception:
            log.exception("capture pool command failed")

    def _worker_gone(self, worker: _Worker) -> None:
        """Release whoever waits on a worker that exited, so a crash cannot hang a close."""
        with worker.send_lock:
            worker.alive = False
        worker.ready.set()
        with self._lock:
            closing = [key for key, s in self._sessions.items() if s.closing and worker.number in s.closing]
            syncs = [sync for sync, (waiting, _) in self._syncs.items() if worker.number in waiting]
        if worker.process.poll() not in (None, 0):
            log.error("media worker %d exited with status %s", worker.number, worker.process.returncode)
        for key in closing:
            self._part_closed(key, worker.number, 0)
        for sync in syncs:
            self._settle_sync(sync, worker.number)


# -- the worker process -----------------------------------------------------------------------


@dataclass(eq=False)
class _Part:
    writer: SpoolWriter
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
        self.writer.close()


class _WorkerServer:
    """A worker's main thread: carries out the engine's commands until ``stop`` or end of file."""

    def __init__(
        self, control: socket.socket, flush_interval: float, digits_resume: float = 5.0, number: int = 0
    ) -> None:
        # A digit one worker finds may be a flush interval old when the engine relays it here.
        self._control = control
        self._send_lock = threading.Lock()
        self._parts: dict[str, _Part] = {}

        def digits(key: str, name: str, state: str, at: float, how: str) -> None:
            self._reply({"op": "digits", "key": key, "name": name, "state": state, "at": at, "how": how})

        self._capture = CaptureLoop(
            lambda key: self._reply({"op": "timeout", "key": key}),
            flush_interval=flush_interval,
            on_digits=digits,
            digits_resume=digits_resume,
            digits_prefix=f"w{number}.",
            holdback=flush_interval + HOLDBACK_SECONDS,
        )

    def _reply(self, message: dict[str, Any]) -> None:
        message["total"] = self._capture.packets_total
        data = json.dumps(message, separators=(",", ":")).encode()
        with self._send_lock:
            try:
                self._control.send(data)
            except OSError as exc:
                log.debug("engine went away: %s", exc)

    def serve(self) -> None:
        self._capture.start()
        self._reply({"op": "ready"})
        try:
            while True:
                data, fds, _, _ = socket.recv_fds(self._control, MESSAGE_MAX, 4)
                if not data:
                    break  # the engine is gone
                try:
                    command = json.loads(data)
                    if command["op"] == "stop":
                        break
                    self._carry_out(command, fds)
                except Exception:
                    # One bad command (say, a journal that cannot be opened) must not end
                    # capture of every other call in this worker.
                    log.exception("media worker command failed")
                    for fd in fds:
                        if not any(fd in part.fds for part in self._parts.values()):
                            os.close(fd)
        finally:
            self._capture.stop()
            for part in self._parts.values():
                part.close()
            self._control.close()

    def _carry_out(self, command: dict[str, Any], fds: list[int]) -> None:
        op = command["op"]
        key = str(command.get("key", ""))
        capture = self._capture
        if op == "open":
            path = Path(command["path"])
            spool_key = base64.b64decode(command["spool_key"])
            # The session key is the recording id (see MediaEngine.open_session).
            writer = SpoolWriter.append_to(path, journal_seal(spool_key, key, int(command["writer"])))
            self._parts[key] = _Part(writer)
            capture.open_session(key, writer, float(command["rtp_timeout"]))
        elif op == "add":
            part = self._parts.get(key)
            if part is None:
                raise ValueError(f"stream added to session {key}, which this worker does not hold")
            part.fds.extend(fds)
            capture.add_stream(key, fds[0], int(command["index"]))
        elif op == "close":
            closing = self._parts.pop(key, None)

            def done(packets: int) -> None:
                # Runs in the capture thread after the final flush: the descriptors are
                # closed before the engine hears of it and reuses the port.
                if closing is not None:
                    closing.close()
                losses = capture.take_losses(key)
                self._reply({"op": "closed", "key": key, "packets": packets, "losses": losses})

            capture.close_session(key, done)
        elif op == "flush":
            capture.flush_all()
        elif op == "silence":
            streams = command["streams"]
            end = command["end"]
            capture.silence(
                key,
                str(command["name"]),
                None if streams is None else frozenset(int(i) for i in streams),
                float(command["start"]),
                None if end is None else float(end),
            )
        elif op == "watch":
            g711 = {int(pt): str(name) for pt, name in dict(command["g711"]).items()}
            capture.watch_stream(
                key,
                int(command["index"]),
                [int(t) for t in command["events"]],
                g711,
                consent_event=int(command.get("consent", -1)),
                pauses=bool(command.get("pauses", True)),
            )
        elif op == "sync":
            sync = int(command["id"])
            capture.call(lambda: self._reply({"op": "synced", "id": sync}))
        else:
            raise ValueError(f"unknown command {op!r}")


def main(argv: list[str]) -> int:
    configure_logging("WARNING", "media worker %(process)d: %(levelname)s %(message)s")
    # Ctrl-C reaches the whole process group; the engine stops its workers itself (after
    # closing every session), and a vanished engine shows up as end of file here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(argv) > 2:
        watch(int(argv[2]))  # die with the server even after its kill -9
    control = socket.socket(fileno=int(argv[0]))
    digits_resume = float(argv[3]) if len(argv) > 3 else 5.0
    number = int(argv[4]) if len(argv) > 4 else 0
    _WorkerServer(control, float(argv[1]), digits_resume, number).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
