"""SIP over UDP, TCP and TLS (RFC 3261 §18) as asyncio protocols.

The socket adapters here are the only place that catches parse errors: a
message that cannot be parsed is answered 400 when Via, From, To, Call-ID
and CSeq are readable (RFC 3261 §8.2), otherwise dropped; an exception from
the handler is logged and answered 500, so no input can stop the process.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from callvault.runtime.sip.metrics import count_malformed, count_response
from callvault.services.phone import mask_digits
from callvault.sip.message import (
    SipRequest,
    SipResponse,
    frame_stream_message,
    make_response,
    parse_message,
    readable_for_response,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    """Where a message came from, and how to answer it."""

    transport: str  # "UDP", "TCP" or "TLS"
    host: str
    port: int
    send: Callable[[bytes], None]
    local_host: str
    local_port: int
    # Subject (RFC 4514) of the client certificate a mutual-TLS peer presented.
    tls_subject: str | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


class MessageHandler(Protocol):
    def handle(self, message: SipRequest | SipResponse, peer: Peer) -> None:
        """Process one parsed message; raise ValueError if it is semantically malformed."""


def _answer_broken(data: bytes, peer: Peer, reason: str) -> None:
    count_malformed()
    request = readable_for_response(data)
    if request is None or request.method == "ACK":
        log.info("dropped unparseable message from %s:%s: %s", peer.host, peer.port, mask_digits(reason))
        return
    warning = reason.replace('"', "'")[:200]
    response = make_response(request, 400, headers=[("Warning", f'399 callvault "{warning}"')])
    log.info("answered 400 to %s:%s: %s", peer.host, peer.port, mask_digits(reason))
    count_response(400)
    peer.send(response.serialise())


def dispatch(handler: MessageHandler, data: bytes, peer: Peer, *, stream: bool, max_size: int) -> None:
    if not data.strip():
        return  # keep-alive (RFC 5626 CRLF ping)
    try:
        message = parse_message(data, stream=stream, max_size=max_size)
    except ValueError as exc:
        _answer_broken(data, peer, str(exc))
        return
    try:
        handler.handle(message, peer)
    except ValueError as exc:
        if isinstance(message, SipRequest) and message.method != "ACK":
            _answer_broken(data, peer, str(exc))
    except Exception:
        log.exception("handling %s from %s:%s failed", _describe(message), peer.host, peer.port)
        if isinstance(message, SipRequest) and message.method != "ACK":
            try:
                count_response(500)
                peer.send(make_response(message, 500).serialise())
            except Exception:
                log.exception("could not even answer 500")


def _describe(message: SipRequest | SipResponse) -> str:
    return message.method if isinstance(message, SipRequest) else str(message.status)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: MessageHandler, max_size: int) -> None:
        self._handler = handler
        self._max_size = max_size
        self._transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("0.0.0.0", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        transport = self._transport
        if transport is None:
            return

        def send(payload: bytes) -> None:
            transport.sendto(payload, (host, port))

        peer = Peer("UDP", host, port, send, self.local[0], self.local[1])
        dispatch(self._handler, data, peer, stream=False, max_size=self._max_size)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after a client went away; nothing to do.
        log.debug("UDP error: %s", exc)


class StreamProtocol(asyncio.Protocol):
    """One TCP or TLS connection; Content-Length frames the messages.

    A connection that stays silent for ``idle_timeout`` seconds while
    ``keep_open(peer)`` says it carries no call is closed: otherwise every
    client that connects and goes quiet (or vanishes without a FIN) would hold
    a descriptor and a buffer for ever. A connection carrying a call stays open
    however quiet it is, because the BYE for that call has to travel on it.
    """

    def __init__(
        self,
        handler: MessageHandler,
        max_size: int,
        transport_name: str,
        *,
        idle_timeout: float | None = None,
        keep_open: Callable[[Peer], bool] | None = None,
        connections: set[StreamProtocol] | None = None,
    ) -> None:
        self._handler = handler
        self._max_size = max_size
        self._name = transport_name
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self._idle_timeout = idle_timeout
        self._keep_open = keep_open
        self._connections = connections
        self._last_heard = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP and SSL transports do not subclass asyncio.Transport (an
        # isinstance assertion here reset every connection under `callvault serve`).
        stream = cast(asyncio.Transport, transport)
        self._transport = stream
        remote = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)

        def send(payload: bytes) -> None:
            if not stream.is_closing():
                stream.write(payload)

        self._peer = Peer(
            self._name,
            str(remote[0]),
            int(remote[1]),
            send,
            str(local[0]),
            int(local[1]),
            client_subject(transport.get_extra_info("ssl_object")),
        )
        if self._connections is not None:
            self._connections.add(self)
        self._heard()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._connections is not None:
            self._connections.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _heard(self) -> None:
        if self._idle_timeout is None:
            return
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(self._last_heard + self._idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._transport is None or self._transport.is_closing() or self._idle_timeout is None:
            return
        loop = asyncio.get_running_loop()
        due = self._last_heard + self._idle_timeout
        busy = self._peer is not None and self._keep_open is not None and self._keep_open(self._peer)
        if busy or loop.time() < due:
            # A call ends without a word on this connection (RTP timeout): look again now and then.
            when = max(due, loop.time() + self._idle_timeout / 4) if busy else due
            self._idle_timer = loop.call_at(when, self._check_idle)
            return
        assert self._peer is not None
        log.info(
            "closing %s connection from %s:%s: idle for %.0f s",
            self._name,
            self._peer.host,
            self._peer.port,
            self._idle_timeout,
        )
        self._transport.close()

    def data_received(self, data: bytes) -> None:
        assert self._peer is not None and self._transport is not None
        self._heard()
        self._buffer.extend(data)
        while True:
            try:
                message = frame_stream_message(self._buffer, self._max_size)
            except ValueError as exc:
                _answer_broken(bytes(self._buffer), self._peer, str(exc))
                log.info("closing %s connection from %s: %s", self._name, self._peer.host, exc)
                self._buffer.clear()
                self._transport.close()
                return
            if message is None:
                return
            dispatch(self._handler, message, self._peer, stream=True, max_size=self._max_size)


async def open_udp(
    handler: MessageHandler, host: str, port: int, max_size: int
) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: UdpProtocol(handler, max_size), local_addr=(host, port)
    )
    return transport, int(protocol.local[1])


async def open_stream(
    handler: MessageHandler,
    host: str,
    port: int,
    max_size: int,
    ssl_context: ssl.SSLContext | None = None,
    *,
    idle_timeout: float | None = None,
    keep_open: Callable[[Peer], bool] | None = None,
    connections: set[StreamProtocol] | None = None,
) -> tuple[asyncio.Server, int]:
    """Listen for SIP over TCP (or TLS with ``ssl_context``); ``connections`` tracks the open ones."""
    loop = asyncio.get_running_loop()
    name = "TLS" if ssl_context is not None else "TCP"
    server = await loop.create_server(
        lambda: StreamProtocol(
            handler,
            max_size,
            name,
            idle_timeout=idle_timeout,
            keep_open=keep_open,
            connections=connections,
        ),
        host=host,
        port=port,
        ssl=ssl_context,
        reuse_address=True,
    )
    bound = int(server.sockets[0].getsockname()[1])
    return server, bound


def tls_context(cert_path: str, key_path: str, client_ca: str | None = None) -> ssl.SSLContext:
    """The server side of SIP over TLS; with ``client_ca``, mutual TLS.

    With a client CA the handshake itself refuses a client that presents no
    certificate or one not issued by that CA: such a peer never gets to send
    a SIP message.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_subject(ssl_object: object) -> str | None:
    """The verified client certificate's subject as an RFC 4514 string (None without one)."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return None


def install_uvloop() -> bool:
    """Use uvloop's event loop policy when it is installed (faster datagram handling)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
