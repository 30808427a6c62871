"""End-to-end capacity: concurrent SIPREC calls one core records completely, with every step included.

Run: ``python bench/e2e.py [--steps 100,300,600,1000] [--duration 20] [--ramp 5] [--py-spy]``

A real ``callvault serve`` (fresh data directory, SQLite unless ``--database-url``)
runs pinned with ``taskset`` to one core; every process it starts (render
workers, their fork server) inherits the pinning, so all of a recording's work
(SIP, capture, journal, call-time rendering, Opus encoding, encryption,
hashing, signing, catalogue writes, the API) shares that core. A load
generator pinned to another core plays an SBC: for each step of N calls it
sends N real SIPREC INVITEs (multipart SDP + rs-metadata, two labelled PCMU
streams) spread over ``--ramp`` seconds, ACKs each 200, sends paced 20 ms
G.711 RTP on both streams of every answered call for ``--duration`` seconds
(conversation-like speech with turn-taking: the listener's line carries
low-level noise), then BYE. One UDP socket carries all signalling (non-blocking,
retransmitted per RFC 3261 timer A/E); RTP leaves through ``sendmmsg`` in
batches of up to 1,024 packets, each with its own destination, with the
payload, sequence number and timestamp of every active stream rewritten per
tick in one numpy array (the generator's cost does not grow per packet).

Per step, printed:

- ``set up``: INVITEs answered 200 (``refused``: 503 from admission control);
- ``complete``: calls verified through the REST API (``GET /api/v1/recordings``
  and each recording's detail): status ``complete``, duration within 1 s of
  the call as the SBC saw it (200 to BYE), two channels (stereo, not mixed);
- ``lost``: RTP packets the recorder counted lost (sequence-number holes in its
  per-stream statistics); ``missing``: packets the generator's ``sendmmsg`` accepted
  that no recording received (also counts losses at a stream's ends); ``sendfail``:
  the generator's refused sends;
- ``CPU s``: user+system seconds of all server processes (``/proc``) from the
  first INVITE to the last call sealed; ``ms/call`` that divided by the calls
  set up, after subtracting the idle server's CPU over the same time
  (the baseline, measured in the same run before the first step);
- ``calls/core``: what ``ms/call`` means for 20 s calls on one core:
  ``duration / (ms/call)``, the concurrent calls one core would sustain;
- ``seal after BYE``: seconds from the last BYE sent to the last call sealed
  (the finalised counter on ``/metrics`` reaching the calls set up, polled
  every 0.1 s), and the median over calls (close-to-sealed histogram).

With ``--py-spy`` (``pip install py-spy``; needs ptrace rights) the server
and its workers are sampled during the last step and the hottest functions
are printed, by process kind, as the share of all samples.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.capture import _Iovec, _Mmsghdr
from tests.support.test_src import Stream, answered_ports, metadata_xml, multipart, parse_response, sdp_offer

from callvault.media.g711 import ulaw_encode
from callvault.media.signals import synth_speech_like

TICK = 0.02
PACKET = 172
BATCH = 1024
PHASES = 4  # sending phases per tick, as real calls are not phase-aligned
VOICE_SECONDS = 12.0  # the looped conversation each call plays (from its own offset)
AGENT = "sip:1001@pbx.example"
CUSTOMER = "sip:+14155550199@carrier.example"


# -- the conversation the calls play ---------------------------------------------------------


def conversation(turns: bool) -> np.ndarray:
    """(2, frames, 160) µ-law payloads: agent and customer; with ``turns``, one talks at a time
    (3 s turns) while the other's line carries noise at about -60 dBFS."""
    rate = 8000
    agent = synth_speech_like(VOICE_SECONDS, rate, seed=1).astype(np.int32)
    customer = synth_speech_like(VOICE_SECONDS, rate, seed=2).astype(np.int32)
    if turns:
        t = np.arange(agent.size) / rate
        agent_turn = (t // 3.0) % 2 == 0
        noise = np.random.default_rng(3).normal(0, 30, agent.size).astype(np.int32)
        agent = np.where(agent_turn, agent, noise)
        customer = np.where(agent_turn, noise[::-1], customer)
    frames = agent.size // 160
    out = np.zeros((2, frames, 160), dtype=np.uint8)
    for row, pcm in enumerate((agent, customer)):
        encoded = np.frombuffer(ulaw_encode(pcm.clip(-32768, 32767).astype(np.int16)), dtype=np.uint8)
        out[row] = encoded[: frames * 160].reshape(frames, 160)
    return out


# -- the load generator (an SBC) ----------------------------------------------------------------


@dataclass
class Call:
    index: int
    call_id: str
    tag: str
    state: str = "pending"  # pending, inviting, up, byeing, done, refused, failed
    to_tag: str = ""
    branch: str = ""
    sent: bytes = b""
    attempts: int = 0
    next_retransmit: float = 0.0
    provisional: bool = False
    answered_at: float = 0.0
    bye_at: float = 0.0
    status: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _request(
    method: str,
    call: Call,
    target: tuple[str, int],
    local_port: int,
    cseq: int,
    *,
    branch: str,
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    to = f"<sip:srs@{target[0]}>" + (f";tag={call.to_tag}" if call.to_tag else "")
    lines = [
        f"{method} sip:srs@{target[0]}:{target[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:sbc@127.0.0.1>;tag={call.tag}",
        f"To: {to}",
        f"Call-ID: {call.call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:sbc@127.0.0.1:{local_port}>;+sip.src",
    ]
    if method == "INVITE":
        lines.append("Require: siprec")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _offer() -> tuple[str, bytes]:
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    return multipart(sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("Yw==", CUSTOMER)], streams))


def _pin(core: int) -> None:
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        pass


class _Rtp:
    """Every stream's next packet in one array; ``sendmmsg`` sends the active rows."""

    def __init__(self, calls: int, voices: np.ndarray) -> None:
        n = 2 * calls
        self.n = n
        self.voices = voices
        self.frames = voices.shape[1]
        self.buf = np.zeros((n, PACKET), dtype=np.uint8)
        self.buf[:, 0] = 0x80
        self.buf[:, 8:12] = np.arange(1, n + 1, dtype=">u4").view(np.uint8).reshape(n, 4)
        self.names = np.zeros((n, 16), dtype=np.uint8)
        self.names[:, 0:2] = np.frombuffer(np.uint16(socket.AF_INET).tobytes(), dtype=np.uint8)
        self.names[:, 4:8] = np.frombuffer(socket.inet_aton("127.0.0.1"), dtype=np.uint8)
        self.start = np.full(n, 1 << 40, dtype=np.int64)  # first tick of each stream (never: huge)
        self.end = np.zeros(n, dtype=np.int64)
        self.offset = (np.arange(n) // 2 * 37) % self.frames  # calls are not in step with each other
        self.voice = np.arange(n) % 2
        self.iovs = (_Iovec * n)()
        self.msgs = (_Mmsghdr * n)()
        size = ctypes.sizeof(_Iovec)
        for i in range(n):
            self.iovs[i].iov_base = self.buf.ctypes.data + i * PACKET
            self.iovs[i].iov_len = PACKET
            self.msgs[i].msg_hdr.msg_name = self.names.ctypes.data + i * 16
            self.msgs[i].msg_hdr.msg_namelen = 16
            self.msgs[i].msg_hdr.msg_iov = ctypes.cast(
                ctypes.addressof(self.iovs) + i * size, ctypes.POINTER(_Iovec)
            )
            self.msgs[i].msg_hdr.msg_iovlen = 1
        self.msg_size = ctypes.sizeof(_Mmsghdr)
        self.all_msgs = np.frombuffer(self.msgs, dtype=np.uint8).reshape(n, self.msg_size)
        self.batch = (_Mmsghdr * n)()
        self.batch_np = np.frombuffer(self.batch, dtype=np.uint8).reshape(n, self.msg_size)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
        self.sendmmsg = ctypes.CDLL(None, use_errno=True).sendmmsg
        self.sent = 0
        self.failed = 0

    def activate(self, call: int, ports: tuple[int, int], first_tick: int, ticks: int) -> None:
        for row, port in zip((2 * call, 2 * call + 1), ports, strict=True):
            self.names[row, 2:4] = np.array([port], dtype=">u2").view(np.uint8)
            self.start[row] = first_tick
            self.end[row] = first_tick + ticks
            self.buf[row, 1] = 0x80  # marker on the first packet, PT 0

    def tick(self, k: int, phase: int) -> None:
        rows = np.flatnonzero((self.start <= k) & (k < self.end))
        rows = rows[(rows // 2) % PHASES == phase]
        if rows.size == 0:
            return
        age = k - self.start[rows]
        self.buf[rows, 2:4] = (age & 0xFFFF).astype(">u2").view(np.uint8).reshape(-1, 2)
        self.buf[rows, 4:8] = ((age * 160) & 0xFFFFFFFF).astype(">u4").view(np.uint8).reshape(-1, 4)
        frames = (self.offset[rows] + age) % self.frames
        self.buf[rows, 12:] = self.voices[self.voice[rows], frames]
        self.batch_np[: rows.size] = self.all_msgs[rows]
        base = ctypes.addressof(self.batch)
        done = 0
        while done < rows.size:
            count = min(BATCH, rows.size - done)
            sent = self.sendmmsg(self.sock.fileno(), ctypes.c_void_p(base + done * self.msg_size), count, 0)
            if sent <= 0:
                self.failed += 1
                done += 1
                continue
            self.sent += sent
            done += sent
        self.buf[rows, 1] = 0x00  # marker only on the first packet


def generator(
    calls: int, duration: float, ramp: float, target: tuple[str, int], core: int, turns: bool, out: Connection
) -> None:
    """One step: set up ``calls`` calls over ``ramp`` seconds, play them, hang up; report to ``out``."""
    _pin(core)
    try:
        os.nice(-5)
    except OSError:
        pass
    rtp = _Rtp(calls, conversation(turns))
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sip.bind(("127.0.0.1", 0))
    sip.setblocking(False)
    local_port = sip.getsockname()[1]
    content_type, body = _offer()
    run = secrets.token_hex(4)
    table = [Call(i, f"e2e-{run}-{i}@bench", secrets.token_hex(4)) for i in range(calls)]
    by_id = {c.call_id: c for c in table}
    call_ticks = round(duration / TICK)
    t0 = time.time() + 0.2
    next_invite = 0
    k = 0
    late = 0

    open_transactions: dict[int, Call] = {}  # INVITEs and BYEs without a final response

    def send(call: Call, data: bytes, now: float) -> None:
        call.sent, call.attempts, call.next_retransmit = data, 1, now + 0.5
        open_transactions[call.index] = call
        sip.sendto(data, target)

    def on_response(data: bytes, now: float, k: int) -> None:
        response = parse_response(data)
        if response is None:
            return  # a request from the recorder (it hangs up only on RTP timeout): not expected here
        call = by_id.get(response.header("call-id") or "")
        if call is None:
            return
        method = (response.header("cseq") or " ").split()[-1]
        if response.status < 200:
            call.provisional = call.provisional or method == "INVITE"
            return
        if method == "INVITE" and call.state == "inviting":
            call.status = response.status
            ack_branch = call.branch if response.status >= 300 else f"z9hG4bK{secrets.token_hex(6)}"
            call.to_tag = response.to_tag or ""
            sip.sendto(_request("ACK", call, target, local_port, 1, branch=ack_branch), target)
            if response.status != 200:
                call.state = "refused"
                call.extra["retry_after"] = response.header("retry-after")
                return
            ports = answered_ports(response.body)
            call.state, call.answered_at = "up", now
            rtp.activate(call.index, (ports["1"], ports["2"]), k + 1, call_ticks)
        elif method == "INVITE" and call.status == 200:
            # A retransmitted 200 (our ACK was lost): ACK it again.
            sip.sendto(
                _request("ACK", call, target, local_port, 1, branch=f"z9hG4bK{secrets.token_hex(6)}"), target
            )
        elif method == "BYE" and call.state == "byeing":
            call.state = "done"
            call.extra["bye_status"] = response.status

    while True:
        now = time.time()
        # INVITEs due by the ramp.
        while next_invite < calls and now >= t0 + ramp * next_invite / calls:
            call = table[next_invite]
            call.state, call.branch = "inviting", f"z9hG4bK{secrets.token_hex(6)}"
            send(
                call,
                _request(
                    "INVITE",
                    call,
                    target,
                    local_port,
                    1,
                    branch=call.branch,
                    body=body,
                    content_type=content_type,
                ),
                now,
            )
            next_invite += 1
        # Responses.
        while True:
            try:
                data = sip.recv(65535)
            except BlockingIOError:
                break
            on_response(data, now, k)
        # BYEs of calls whose media ended, and retransmissions.
        # Per tick only the calls that need something: media ending now (BYE), open transactions.
        for index in np.flatnonzero(rtp.end[0::2] == k).tolist():
            call = table[index]
            if call.state == "up":
                call.state, call.bye_at = "byeing", now
                branch = f"z9hG4bK{secrets.token_hex(6)}"
                send(call, _request("BYE", call, target, local_port, 2, branch=branch), now)
        for call in list(open_transactions.values()):
            if call.state not in ("inviting", "byeing"):
                del open_transactions[call.index]
            elif now >= call.next_retransmit and not (call.state == "inviting" and call.provisional):
                if call.attempts >= 7:
                    call.state = "failed"
                    continue
                sip.sendto(call.sent, target)
                call.attempts += 1
                call.next_retransmit = now + min(4.0, 0.5 * 2**call.attempts)
        if next_invite == calls and not open_transactions and k >= int(rtp.end.max()):
            break
        # RTP of this tick, in phases on absolute deadlines.
        for phase in range(PHASES):
            deadline = t0 + k * TICK + phase * TICK / PHASES
            lag = time.time() - deadline
            if lag < 0:
                time.sleep(-lag)
            elif lag > TICK:
                late += 1
            rtp.tick(k, phase)
        k += 1
    states = Counter(c.state for c in table)
    answered = [c for c in table if c.status == 200]
    out.send(
        {
            "started": t0,
            "answered": len(answered),
            "refused": Counter(c.status for c in table if c.state == "refused"),
            "retry_after": sorted(
                {c.extra.get("retry_after") for c in table if c.state == "refused"} - {None}
            ),
            "failed": states["failed"],
            "bye_ok": sum(1 for c in table if c.extra.get("bye_status") == 200),
            "last_bye": max((c.bye_at for c in answered), default=time.time()),
            "lengths": {c.call_id: c.bye_at - c.answered_at for c in answered},
            "packets_sent": rtp.sent,
            "send_failures": rtp.failed,
            "late_fraction": late / max(1, k * PHASES),
        }
    )
    out.close()


# -- the server under test -----------------------------------------------------------------


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User+system CPU of ``root`` and every process under it, including reaped children."""
    return sum(cpu_by_kind(root).values())


def _kind(pid: int) -> str:
    """What a server process is, from its command line."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "worker_process" in command:
        return "job workers"
    if "forkserver" in command or "multiprocessing" in command:
        return "render workers"
    if "callvault serve" in command:
        return "serve (SIP, capture, sealing, API)"
    return "other"


def cpu_by_kind(root: int) -> dict[str, float]:
    """User+system CPU seconds of ``root``'s processes by kind (serve, render workers, job workers),
    each with its reaped children: the split that shows which process a call's work lands in."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: Counter[str] = Counter()
    for pid in _descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[_kind(pid)] += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return {kind: count / ticks for kind, count in totals.items()}


class Server:
    def __init__(self, data: Path, core: int, database_url: str, transcribe: bool = False) -> None:
        self.http_port = _free_port()
        self.sip_port = _free_port(socket.SOCK_DGRAM)
        self.env = {
            **os.environ,
            "CALLVAULT_DATA_DIR": str(data),
            "CALLVAULT_DATABASE_URL": database_url,
            "CALLVAULT_HTTP_PORT": str(self.http_port),
            "CALLVAULT_SIP_PORT": str(self.sip_port),
            "CALLVAULT_SIP_TLS_PORT": str(_free_port()),
            "CALLVAULT_RTP_PORTS": "30000-39999",
            "CALLVAULT_MAX_CALLS": "5000",
            "CALLVAULT_MIN_FREE_DISK_MB": "64",
            "CALLVAULT_LOG_LEVEL": "WARNING",
            # Speech recognition is a workload of its own (bench/transcription.py measures it):
            # a Whisper pass per call would be most of the core. --transcribe includes it.
            "CALLVAULT_TRANSCRIPTION_AUTO": "true" if transcribe else "false",
        }
        self.token = self._token()
        self._catalog: Any = None
        self.log = (data / "server.log").open("w")
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-m", "callvault", "serve"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.http_port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"callvault serve exited: see {data / 'server.log'}")
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("callvault serve did not come up within 120 s")
            time.sleep(0.2)

    def _token(self) -> str:
        """A compliance officer's API token, made in the catalog before the server starts."""
        from callvault.cli.common import cli_principal
        from callvault.services.context import open_context
        from callvault.settings import load_settings

        ctx = open_context(load_settings(env=self.env))
        try:
            admin = cli_principal()
            ctx.users.create_user(admin, "bench", "compliance_officer")
            ctx.users.create_user(admin, "agent1001", "agent", sip_identities=[AGENT])
            return ctx.users.create_token(admin, "bench", "e2e")
        finally:
            close = getattr(ctx, "close", None)
            if callable(close):
                close()

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def cpu_kinds(self) -> dict[str, float]:
        return cpu_by_kind(self.process.pid)

    def metric(self, text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def metrics(self) -> str:
        return self.http.get("/metrics").text

    def sealed(self) -> int:
        """Recordings no longer 'recording', read from the catalogue by this process: polling the
        server's own /metrics every 0.1 s would cost the measured core (a tenth of its samples)."""
        import sqlalchemy

        if self._catalog is None:
            from callvault.settings import load_settings

            self._catalog = sqlalchemy.create_engine(load_settings(env=self.env).resolved_database_url)
        with self._catalog.connect() as connection:
            query = sqlalchemy.text("SELECT count(*) FROM recordings WHERE status != 'recording'")
            return int(connection.execute(query).scalar_one())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.http.close()
        self.log.close()


# -- one step ---------------------------------------------------------------------------------


def verify(server: Server, lengths: dict[str, float], since: float) -> dict[str, Any]:
    """Every recording begun since ``since``, checked through the API."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 1))
    items: list[dict[str, Any]] = []
    while True:
        page = server.http.get(
            "/api/v1/recordings", params={"from": started, "limit": 500, "offset": len(items)}
        )
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            break
    complete = lost = received = 0
    problems: Counter[str] = Counter()
    for item in items:
        detail = server.http.get(f"/api/v1/recordings/{item['id']}").json()
        call_ids = {c["value"] for c in detail.get("call_ids", [])}
        length = next((lengths[c] for c in call_ids if c in lengths), None)
        stats = [s.get("stats") or {} for s in detail["streams"]]
        lost += sum(max(0, int(s.get("lost", 0))) for s in stats)
        received += sum(int(s.get("received", 0)) for s in stats)
        if detail["status"] != "complete":
            problems[f"status {detail['status']}"] += 1
        elif detail["channels"] != 2 or detail["mixed"]:
            problems["not stereo"] += 1
        elif length is None:
            problems["not a call of this step"] += 1
        elif abs((detail["duration"] or 0) - length) > 1.0:
            problems["duration off by > 1 s"] += 1
        else:
            complete += 1
    return {
        "recordings": len(items),
        "complete": complete,
        "lost": lost,
        "received": received,
        "problems": dict(problems),
    }


def run_step(server: Server, calls: int, args: argparse.Namespace, idle_rate: float) -> dict[str, Any]:
    parent, child = mp.Pipe(duplex=False)
    sealed_before = server.sealed()
    kinds_before = server.cpu_kinds()
    cpu_before, wall_before = sum(kinds_before.values()), time.monotonic()
    profiler = _start_py_spy(server, args) if args.py_spy and calls == max(args.steps) else None
    process = mp.get_context("spawn").Process(
        target=generator,
        args=(
            calls,
            args.duration,
            args.ramp,
            ("127.0.0.1", server.sip_port),
            args.gen_core,
            args.turns,
            child,
        ),
    )
    process.start()
    result = parent.recv()
    process.join()
    # The last call is sealed when the finalised counter has grown by every call set up.
    deadline = time.time() + args.drain_timeout
    while server.sealed() < sealed_before + result["answered"] and time.time() < deadline:
        time.sleep(0.1)
    sealed_at = time.time()
    kinds_after = server.cpu_kinds()
    cpu = sum(kinds_after.values()) - cpu_before
    by_kind = {k: v - kinds_before.get(k, 0.0) for k, v in kinds_after.items()}
    wall = time.monotonic() - wall_before
    profile = _stop_py_spy(profiler) if profiler else None
    text = server.metrics()
    checked = verify(server, result["lengths"], result["started"])
    net = max(0.0, cpu - idle_rate * wall)
    per_call = 1000 * net / max(1, result["answered"])
    return {
        "calls": calls,
        **{k: v for k, v in result.items() if k != "lengths"},
        **checked,
        "cpu": cpu,
        "wall": wall,
        "ms_per_call": per_call,
        "ms_per_call_by_process": {k: 1000 * v / max(1, result["answered"]) for k, v in by_kind.items()},
        "calls_per_core": args.duration * 1000 / per_call if per_call else float("inf"),
        "seal_after_bye": sealed_at - result["last_bye"],
        "sealed_all": server.sealed() >= sealed_before + result["answered"],
        "admission_refused": server.metric(text, "callvault_admission_refused_total"),
        "profile": profile,
    }


# -- profiling --------------------------------------------------------------------------------


def _start_py_spy(server: Server, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        return None
    out = Path(args.data) / "profile.txt"
    # --gil: only the thread holding the GIL is CPU time; a thread waiting for it (the
    # capture thread, the catalogue threads) would otherwise show where it waits as cost.
    # Recorded until the step's last call is sealed (stopped with SIGINT, which writes the file).
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--gil",
            "--format",
            "raw",
            "--rate",
            "100",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, out


def _stop_py_spy(profiler: tuple[subprocess.Popen[bytes], Path] | None) -> dict[str, float] | None:
    if profiler is None:
        return None
    process, out = profiler
    process.send_signal(signal.SIGINT)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait()
    if not out.exists():
        return None
    return summarise_profile(out.read_text())


def top_functions(raw: str, count: int = 15) -> list[tuple[str, float]]:
    """The callvault functions nearest the leaf of each sample (what our code spent, itself or
    in the library it called), as shares of all samples."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        ours = [frame for frame in frames if "callvault/" in frame]
        counts[(ours[-1] if ours else frames[-1]).split(" (")[0]] += int(number)
        total += int(number)
    return [(name, n / max(1, total)) for name, n in counts.most_common(count)]


# Where a stack's time goes, by the first matching frame from the leaf (name fragments).
BUCKETS = (
    ("Opus encoding", ("encode", "libopus", "av/")),
    ("G.711 decoding", ("ulaw_decode", "alaw_decode", "g711")),
    ("timeline / jitter", ("timeline",)),
    ("mixing / silence gate", ("mix", "gate", "resample")),
    ("encryption / hashing / signing", ("crypto", "aesgcm", "sha256", "sign", "seal")),
    ("journal / spool", ("spool", "journal")),
    ("catalogue (SQL)", ("sqlalchemy", "sqlite", "psycopg", "catalog", "recordings.py")),
    ("capture loop", ("capture.py",)),
    ("SIP", ("/sip/",)),
    ("HTTP / API", ("uvicorn", "starlette", "fastapi", "/api/")),
    ("process hops (pickling, pipes)", ("pickle", "concurrent/futures", "multiprocessing", "connection.py")),
)


def summarise_profile(raw: str) -> dict[str, float]:
    """Share of samples per bucket (idle frames left out: epoll waits, sleeps, queue gets)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1].lower()
        if any(
            word in leaf for word in ("select", "epoll", "poll (", "wait (", "sleep", "_recv_bytes", "accept")
        ):
            continue
        bucket = "other"
        for frame in reversed(frames):
            lowered = frame.lower()
            hit = next((name for name, words in BUCKETS if any(w in lowered for w in words)), None)
            if hit:
                bucket = hit
                break
        counts[bucket] += int(number)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name, _ in counts.most_common()}


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="100,300,600,1000")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of audio per call")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which a step's INVITEs go out")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--gen-core", type=int, default=1)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument(
        "--both-talk",
        dest="turns",
        action="store_false",
        help="both parties speak all the time (default: turn-taking)",
    )
    parser.add_argument(
        "--transcribe",
        action="store_true",
        help="also transcribe every call when sealed (off: recording only)",
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the largest step with py-spy")
    parser.add_argument("--py-spy-raw", default="e2e-profile.txt", help="where the raw py-spy samples go")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.steps = [int(s) for s in args.steps.split(",") if s]
    args.data = tempfile.mkdtemp(prefix="cv-e2e-")
    _pin(args.gen_core)  # this process polls and verifies: keep it off the measured core
    server = Server(Path(args.data), args.server_core, args.database_url, args.transcribe)
    rows: list[dict[str, Any]] = []
    try:
        # Baseline from this run: the idle server's CPU per second (timers, tickers, the API).
        time.sleep(2)
        idle_cpu, idle_start = server.cpu(), time.monotonic()
        time.sleep(args.duration / 2)
        idle_rate = (server.cpu() - idle_cpu) / (time.monotonic() - idle_start)
        print(
            f"server pinned to core {args.server_core}, generator on core {args.gen_core}; "
            f"{args.duration:.0f} s calls, INVITEs over {args.ramp:.0f} s, "
            f"{'turn-taking' if args.turns else 'both talking'}; baseline: idle server "
            f"{1000 * idle_rate:.1f} ms CPU per second",
            flush=True,
        )
        header = (
            f"{'calls':>6} {'set up':>7} {'refused':>7} {'complete':>8} {'lost':>6} {'missing':>7} {'sendfail':>8} "
            f"{'CPU s':>7} {'ms/call':>8} {'calls/core':>10} {'seal after BYE':>14} {'gen late':>8}"
        )
        print(header, flush=True)
        for calls in args.steps:
            row = run_step(server, calls, args, idle_rate)
            rows.append(row)
            refused = sum(row["refused"].values())
            print(
                f"{calls:>6} {row['answered']:>7} {refused:>7} {row['complete']:>8} {row['lost']:>6} "
                f"{row['packets_sent'] - row['received']:>7} "
                f"{row['send_failures']:>8} {row['cpu']:>7.1f} {row['ms_per_call']:>8.1f} "
                f"{row['calls_per_core']:>10.0f} {row['seal_after_bye']:>13.1f}s "
                f"{100 * row['late_fraction']:>7.1f}%"
                + ("" if row["sealed_all"] else "  (not all sealed within --drain-timeout)")
                + (f"  problems: {row['problems']}" if row["problems"] else ""),
                flush=True,
            )
            print(
                "  CPU ms per call by process (idle not subtracted): "
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(row["ms_per_call_by_process"].items()))
            )
            if row["profile"]:
                print("  profile of this step (share of samples holding the GIL, all server processes):")
                for name, share in row["profile"].items():
                    print(f"    {name:<34} {100 * share:5.1f} %")
                raw_profile = Path(args.data) / "profile.txt"
                shutil.copyfile(raw_profile, args.py_spy_raw)
                print(f"  hottest callvault functions (raw samples in {args.py_spy_raw}):")
                for name, share in top_functions(raw_profile.read_text()):
                    print(f"    {name:<60} {100 * share:5.1f} %")
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    finally:
        server.stop()
        if args.keep:
            print(f"data directory kept: {args.data}")
        else:
            shutil.rmtree(args.data, ignore_errors=True)


if __name__ == "__main__":
    main()
