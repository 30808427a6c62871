"""Trust at the recorder's edge: who may signal, who may send media, what a session may hold.

Every test drives the real recorder with real SIP and RTP from the
independent test SRC: a source outside the SIP allow-list, TLS clients with
and without a certificate from the configured CA, RTP injected into a live
call from other addresses, an offer with too many streams, a port range
run dry, a wrong SRTP key.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

from callvault.errors import ConfigError
from callvault.runtime.media.ports import PortAllocator
from callvault.runtime.sip.sources import SourcePolicy
from callvault.settings import load_settings
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.siprec.test_calls import AGENT, CUSTOMER, CallSpec, _check_stereo, _two_party_call
from tests.support.audio import correlation, voice
from tests.support.ports import rtp_range
from tests.support.test_src import (
    RtpSender,
    Stream,
    TestSrc,
    answered_ports,
    frames_for,
    metadata_xml,
    multipart,
    sdp_offer,
    send_rtp,
)


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _offer(count: int = 2, srtp: bool = False) -> tuple[list[Stream], str, bytes]:
    streams = [
        Stream(str(i + 1), sender_aor=CUSTOMER if i % 2 == 0 else AGENT, srtp=srtp) for i in range(count)
    ]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams)
    )
    return streams, content_type, body


def _recordings(recorder: Recorder) -> int:
    from sqlalchemy import func, select

    from callvault.db.models import Recording

    with recorder.ctx.catalog.read() as session:
        return int(session.scalar(select(func.count()).select_from(Recording)) or 0)


async def _until(condition: Any, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- the SIP source allow-list ------------------------------------------------------------------


def test_allowed_sources_default_to_loopback_and_parse_networks(tmp_path: Path) -> None:
    default = SourcePolicy(load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path)}).sip_allowed_sources)
    assert default.allows("127.0.0.1") and default.allows("127.0.0.2") and default.allows("::1")
    assert default.allows("::ffff:127.0.0.1")  # an IPv4 peer on a dual-stack socket
    assert not default.allows("192.0.2.10") and not default.allows("2001:db8::1")
    assert not default.allows("not-an-address")
    listed = SourcePolicy(
        load_settings(
            env={
                "CALLVAULT_DATA_DIR": str(tmp_path),
                "CALLVAULT_SIP_ALLOWED_SOURCES": "192.0.2.0/28, 2001:db8::7",
            }
        ).sip_allowed_sources
    )
    assert listed.allows("192.0.2.15") and listed.allows("2001:db8::7")
    assert not listed.allows("192.0.2.16") and not listed.allows("127.0.0.1") and not listed.allows_any
    anyone = load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path), "CALLVAULT_SIP_ALLOWED_SOURCES": "any"})
    assert SourcePolicy(anyone.sip_allowed_sources).allows("198.51.100.1")
    for bad in ("", "10.0.0.0/33", "sbc.example"):
        with pytest.raises(ConfigError, match="CALLVAULT_SIP_ALLOWED_SOURCES"):
            load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path), "CALLVAULT_SIP_ALLOWED_SOURCES": bad})


async def test_sip_from_a_source_outside_the_allow_list_gets_403_and_is_counted(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, sip_allowed_sources="127.0.0.1") as recorder:
        _, content_type, body = _offer()
        refused_before = _sample("callvault_sip_refused_source_total")
        tcp_port = recorder.server.tcp_port
        assert tcp_port is not None

        def exchange() -> tuple[int, str, int, int, int]:
            # 127.0.0.2 is another host as far as the recorder can tell.
            stranger = TestSrc("127.0.0.1", recorder.port, source="127.0.0.2")
            tcp_stranger = TestSrc("127.0.0.1", tcp_port, "TCP", source="127.0.0.2")
            friend = TestSrc("127.0.0.1", recorder.port)
            try:
                invite, _ = stranger.request_text(
                    "INVITE", body=body, content_type=content_type, extra=["Require: siprec"]
                )
                stranger.send_raw(invite)  # once: a retransmission would be refused (and counted) again
                refused = stranger.final_response()
                over_tcp = tcp_stranger.options().status
                ok = friend.options().status
                # The server still serves the stranger's neighbours, and the stranger still gets 403.
                again = stranger.options().status
                return refused.status, refused.header("warning") or "", over_tcp, ok, again
            finally:
                stranger.close()
                tcp_stranger.close()
                friend.close()

        status, warning, over_tcp, ok, again = await as_peer(exchange)
        assert (status, over_tcp, ok, again) == (403, 403, 200, 403)
        assert "source address not allowed" in warning
        assert _sample("callvault_sip_refused_source_total") - refused_before == 3
        assert recorder.server.active_calls == 0 and not recorder.server.recording_ids
        assert _recordings(recorder) == 0
        assert recorder.media.ports.in_use == 0


# -- mutual TLS ---------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
    if not ca:
        usage = (
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def _name(common_name: str, organisation: str = "callvault tests") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(
    directory: Path, stem: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _pki(directory: Path) -> dict[str, Path]:
    """A CA the recorder trusts for clients, a server certificate, and client certificates from
    that CA and from another one."""
    ca_key, other_key = _key(), _key()
    ca_name, other_name = _name("SBC client CA"), _name("Somebody else's CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    paths: dict[str, Path] = {}
    paths["ca"], _ = _write(directory, "ca", ca, ca_key)
    server_key = _key()
    server = _certificate(_name("recorder"), server_key, ca_name, ca_key, server=True)
    paths["server"], paths["server_key"] = _write(directory, "server", server, server_key)
    good_key, bad_key = _key(), _key()
    good = _certificate(_name("sbc1.example", "Example SBC"), good_key, ca_name, ca_key)
    bad = _certificate(_name("sbc1.example", "Example SBC"), bad_key, other_name, other_key)
    paths["good"], paths["good_key"] = _write(directory, "good", good, good_key)
    paths["bad"], paths["bad_key"] = _write(directory, "bad", bad, bad_key)
    return paths


def _client_context(pki: dict[str, Path], client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if client is not None:
        context.load_cert_chain(pki[client], pki[f"{client}_key"])
    return context


def _sip_answer_over_tls(port: int, context: ssl.SSLContext) -> bytes | None:
    """What the recorder says to an OPTIONS over TLS: the response, b"" (closed) or None (handshake refused)."""
    src = TestSrc.__new__(TestSrc)  # only for its request text; the socket is ours
    src.host, src.port, src.transport, src.local_port = "127.0.0.1", port, "TLS", 5061
    src.call_id, src.from_tag, src.to_tag, src.cseq = "tls-probe@test", "probe", None, 1
    request, _ = src.request_text("OPTIONS", to_tag="")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.settimeout(5)
                sock.sendall(request)
                return sock.recv(65535)
    except (ssl.SSLError, ConnectionError):
        return None


async def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(
    tmp_path: Path, database_url: str
) -> None:
    pki = _pki(tmp_path)
    async with start_recorder(
        tmp_path / "data",
        database_url,
        sip_tls_cert=str(pki["server"]),
        sip_tls_key=str(pki["server_key"]),
        sip_tls_port="0",
        sip_tls_ca=str(pki["ca"]),
    ) as recorder:
        port = recorder.server.tls_port
        assert port
        without = await as_peer(lambda: _sip_answer_over_tls(port, _client_context(pki, None)))
        foreign = await as_peer(lambda: _sip_answer_over_tls(port, _client_context(pki, "bad")))
        trusted = await as_peer(lambda: _sip_answer_over_tls(port, _client_context(pki, "good")))
        assert without in (None, b""), without  # refused in the handshake: no SIP at all
        assert foreign in (None, b""), foreign
        assert trusted is not None and trusted.startswith(b"SIP/2.0 200"), trusted

        sent = await _two_party_call(recorder, CallSpec(transport="TLS"), _client_context(pki, "good"))
        recording = await _check_stereo(recorder, sent)
        # The signed manifest's source names the SBC by its certificate.
        source = recording.ingest_source
        assert source is not None and source["kind"] == "siprec"
        assert str(source["address"]).startswith("tls:127.0.0.1:")
        assert source["tls_subject"] == "CN=sbc1.example,O=Example SBC"


async def test_plain_sip_records_no_client_identity(recorder: Recorder) -> None:
    """Without mutual TLS a recording's source is the SRC's address only."""
    sent = await _two_party_call(recorder, CallSpec())
    recording = await recorder.finished(await recorder.recording_for(sent.call_id))
    source = recording.ingest_source
    assert source is not None and str(source["address"]).startswith("udp:127.0.0.1:")
    assert "tls_subject" not in source


# -- RTP source latching ------------------------------------------------------------------------


class _SsrcChange(RtpSender):
    """A sender whose SSRC changes halfway through (an SBC re-anchoring), from the same socket."""

    def packets(self) -> list[bytes | None]:
        packets = super().packets()
        half = len(packets) // 2
        other = struct.pack("!I", (self.ssrc + 1) & 0xFFFFFFFF)
        return [p if p is None or i < half else p[:8] + other + p[12:] for i, p in enumerate(packets)]


async def test_rtp_from_other_sources_is_dropped_counted_and_not_heard(recorder: Recorder) -> None:
    seconds = 1.5
    agent_pcm, customer_pcm = voice(seconds, 8000, 140.0, seed=1), voice(seconds, 8000, 220.0, seed=2)
    intruder_pcm = voice(seconds, 8000, 330.0, seed=7)
    streams, content_type, body = _offer()  # "1": customer, "2": agent
    frames = {
        "agent": frames_for("PCMU", agent_pcm),
        "customer": frames_for("PCMU", customer_pcm),
        "intruder": frames_for("PCMU", (intruder_pcm * 2).astype(np.int16)),
    }
    dropped_before = _sample("callvault_rtp_packets_dropped_total", {"reason": "source"})

    def call() -> tuple[str, float, float]:
        src = TestSrc("127.0.0.1", recorder.port)
        try:
            response = src.invite(content_type, body)
            answered = time.monotonic()
            assert response.status == 200
            ports = answered_ports(response.body)
            senders = [
                RtpSender("127.0.0.1", ports["2"], 0, frames["agent"]),
                _SsrcChange("127.0.0.1", ports["1"], 0, frames["customer"]),
                # Listed after the SRC's senders: each 20 ms tick sends the SRC's packet first,
                # so the call's own first packet latches the stream. Then an injector on another
                # host, and one on the SRC's own host but another port.
                RtpSender("127.0.0.1", ports["1"], 0, frames["intruder"], source="127.0.0.2"),
                RtpSender("127.0.0.1", ports["1"], 0, frames["intruder"]),
            ]
            first_sent = send_rtp(senders)
            hang_up = time.monotonic()
            assert src.bye().status == 200
            return src.call_id, first_sent - answered, hang_up - answered
        finally:
            src.close()

    call_id, lead_in, call_seconds = await as_peer(call)
    recording = await recorder.finished(await recorder.recording_for(call_id))
    assert recording.status == "complete" and recording.channels == 2
    audio, rate = await asyncio.to_thread(recorder.audio, recording.id)
    assert rate == 8000 and audio.shape[1] / rate >= call_seconds - 0.1
    left, right = (channel[round(lead_in * rate) :].astype(np.float64) for channel in audio)
    lag = int(rate * 0.03)
    assert correlation(left, agent_pcm.astype(np.float64), max_lag=lag) >= 0.9
    # The customer's voice, undisturbed, on the right: each SSRC's half on its own, because a new
    # SSRC is placed by its arrival time, which a loaded machine's delivery delay can shift by
    # some milliseconds (the timeline's rule, not the latching's).
    half = len(frames["customer"]) // 2 * 160
    reference = customer_pcm.astype(np.float64)
    assert correlation(right[:half], reference[:half], max_lag=lag) >= 0.9
    assert correlation(right[half:], reference[half:], max_lag=2 * lag) >= 0.9
    assert correlation(right, intruder_pcm, max_lag=lag) < 0.3  # no trace of the intruder
    detail = await asyncio.to_thread(recorder.detail, recording.id)
    stats = {s["label"]: s["stats"] for s in detail["streams"]}
    injected = 2 * len(frames["intruder"])
    assert stats["1"]["dropped_source"] == injected, stats["1"]
    assert stats["1"]["source"].startswith("127.0.0.1:")
    assert stats["1"]["ssrc_count"] == 2 and stats["1"]["received"] == 75  # the SSRC change was kept
    assert stats["2"]["dropped_source"] == 0 and stats["2"]["received"] == 75
    assert detail["status"] == "complete"
    dropped = _sample("callvault_rtp_packets_dropped_total", {"reason": "source"}) - dropped_before
    assert dropped == injected


# -- what one session may hold --------------------------------------------------------------------


async def test_more_streams_than_allowed_are_refused_with_488_and_hold_no_port(recorder: Recorder) -> None:
    _, too_many_type, too_many = _offer(9)
    _, enough_type, enough = _offer(8)

    def exchange() -> tuple[int, str, int, int]:
        src, other = TestSrc("127.0.0.1", recorder.port), TestSrc("127.0.0.1", recorder.port)
        try:
            refused = src.invite(too_many_type, too_many)
            options = src.options().status
            accepted = other.invite(enough_type, enough)
            assert answered_ports(accepted.body) and len(set(answered_ports(accepted.body).values())) == 8
            assert other.bye().status == 200
            return refused.status, refused.header("warning") or "", options, accepted.status
        finally:
            src.close()
            other.close()

    status, warning, options, accepted = await as_peer(exchange)
    assert (status, options, accepted) == (488, 200, 200)
    assert "9 streams" in warning and "at most 8" in warning
    assert len(recorder.server.recording_ids) == 1  # the refused INVITE catalogued nothing
    await recorder.finished(next(iter(recorder.server.recording_ids.values())))
    await _until(lambda: recorder.media.ports.in_use == 0, "the ports to be released")


async def test_running_out_of_rtp_ports_answers_503_and_keeps_serving(
    tmp_path: Path, database_url: str
) -> None:
    ports = rtp_range(2)  # two even ports: room for one two-stream call
    async with start_recorder(tmp_path / "data", database_url, rtp_ports=ports) as recorder:
        _, content_type, body = _offer()

        def first_and_refused() -> tuple[int, int, str | None, str, int]:
            first, second = TestSrc("127.0.0.1", recorder.port), TestSrc("127.0.0.1", recorder.port)
            try:
                held = first.invite(content_type, body)
                refused = second.invite(content_type, body)
                options = second.options().status
                assert first.bye().status == 200
                return (
                    held.status,
                    refused.status,
                    refused.header("retry-after"),
                    refused.header("warning") or "",
                    options,
                )
            finally:
                first.close()
                second.close()

        held, refused, retry_after, warning, options = await as_peer(first_and_refused)
        assert (held, refused, options) == (200, 503, 200)
        assert retry_after is not None and int(retry_after) > 0
        assert "no free RTP port" in warning
        assert len(recorder.server.recording_ids) == 1  # the refused call left no phantom recording
        await recorder.finished(next(iter(recorder.server.recording_ids.values())))
        await _until(lambda: recorder.media.ports.in_use == 0, "the first call's ports to be released")

        def third() -> int:
            src = TestSrc("127.0.0.1", recorder.port)
            try:
                status = src.invite(content_type, body).status
                assert src.bye().status == 200
                return status
            finally:
                src.close()

        assert await as_peer(third) == 200  # the ports came back
        assert _recordings(recorder) == 2


def test_rtp_ports_are_chosen_at_random() -> None:
    low, high = 40000, 41998  # 1,000 even ports
    chosen: list[list[int]] = []
    for _ in range(2):
        allocator = PortAllocator("127.0.0.1", (low, high))
        sockets = [allocator.bind() for _ in range(40)]
        try:
            chosen.append([s.getsockname()[1] for s in sockets])
        finally:
            for sock in sockets:
                allocator.release(sock)
    for ports in chosen:
        assert all(p % 2 == 0 and low <= p <= high for p in ports) and len(set(ports)) == 40
        # Predictable allocation would give consecutive ports; 40 uniform picks of 1,000 all
        # falling in one half of the range has a probability below 1e-10.
        assert max(ports) - min(ports) > (high - low) // 2, ports
        assert sorted(ports) != list(range(min(ports), min(ports) + 80, 2))
    assert chosen[0] != chosen[1]


async def test_a_fresh_recorder_answers_with_unpredictable_ports(recorder: Recorder) -> None:
    low = recorder.settings.rtp_ports[0]
    _, content_type, body = _offer()

    def calls() -> list[int]:
        ports: list[int] = []
        for _ in range(3):
            src = TestSrc("127.0.0.1", recorder.port)
            try:
                response = src.invite(content_type, body)
                assert response.status == 200
                ports.extend(answered_ports(response.body).values())
                assert src.bye().status == 200
            finally:
                src.close()
        return ports

    ports = await as_peer(calls)
    # A cursor from the low end would hand out exactly these; a random choice of 6 ports of
    # 101 gives that set with a probability of about 1e-9.
    assert sorted(ports) != [low + 2 * i for i in range(6)], ports
    for recording_id in list(recorder.server.recording_ids.values()):
        await recorder.finished(recording_id)


# -- SRTP authentication failures ---------------------------------------------------------------


async def test_a_wrong_srtp_key_makes_the_recording_incomplete(recorder: Recorder) -> None:
    seconds = 1.5
    streams, content_type, body = _offer(srtp=True)
    customer, agent = streams
    pcm = voice(seconds, 8000, 140.0, seed=1)
    failed_before = _sample("callvault_rtp_packets_dropped_total", {"reason": "srtp_auth"})

    def call() -> str:
        src = TestSrc("127.0.0.1", recorder.port)
        try:
            response = src.invite(content_type, body)
            assert response.status == 200
            ports = answered_ports(response.body)
            send_rtp(
                [
                    RtpSender("127.0.0.1", ports["2"], 0, frames_for("PCMU", pcm), srtp_key=agent.key),
                    # Keyed with something other than what the SDP said: nothing authenticates.
                    RtpSender("127.0.0.1", ports["1"], 0, frames_for("PCMU", pcm), srtp_key=bytes(30)),
                ]
            )
            assert src.bye().status == 200
            return src.call_id
        finally:
            src.close()

    call_id = await as_peer(call)
    recording = await recorder.finished(await recorder.recording_for(call_id))
    assert recording.status == "incomplete"
    detail = await asyncio.to_thread(recorder.detail, recording.id)
    stats = {s["label"]: s["stats"] for s in detail["streams"]}
    frames = round(seconds * 50)
    assert stats["1"]["srtp_auth_failed"] == frames
    assert (stats["1"]["expected"], stats["1"]["received"], stats["1"]["lost"]) == (frames, 0, frames)
    assert stats["2"]["srtp_auth_failed"] == 0
    assert (stats["2"]["expected"], stats["2"]["received"], stats["2"]["lost"]) == (frames, frames, 0)
    failed = _sample("callvault_rtp_packets_dropped_total", {"reason": "srtp_auth"}) - failed_before
    assert failed == frames
