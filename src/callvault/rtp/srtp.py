"""SRTP with SDES keying (RFC 4568 ``a=crypto``, RFC 3711) through libsrtp.

Only the two suites every SBC offers are supported: AES_CM_128_HMAC_SHA1_80
and AES_CM_128_HMAC_SHA1_32 (30-byte key and salt). libsrtp errors are
translated to ``ValueError`` here.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

import pylibsrtp

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
SUPPORTED_SUITES = tuple(_PROFILES)
MASTER_KEY_LENGTH = 16
MASTER_SALT_LENGTH = 14

_ATTRIBUTE = re.compile(r"^(?:a=)?(?:crypto:)?(\d{1,9})\s+(\S+)\s+(\S+)(?:\s+(.*))?$")
_LIFETIME = re.compile(r"^(?:2\^(\d{1,2})|(\d{1,20}))$")
_MKI = re.compile(r"^(\d{1,20}):(\d{1,3})$")


@dataclass(slots=True, frozen=True)
class SdesCrypto:
    """One ``a=crypto`` attribute: the key material for one direction of one stream."""

    tag: int
    suite: str
    master_key: bytes
    master_salt: bytes
    lifetime: int | None = None
    mki: tuple[int, int] | None = None  # (value, length in bytes)

    @property
    def key_and_salt(self) -> bytes:
        return self.master_key + self.master_salt

    def attribute_value(self) -> str:
        """The attribute value (after ``a=crypto:``) that describes this key."""
        inline = base64.b64encode(self.key_and_salt).decode("ascii")
        if self.lifetime is not None:
            inline += f"|{self.lifetime}"
        if self.mki is not None:
            inline += f"|{self.mki[0]}:{self.mki[1]}"
        return f"{self.tag} {self.suite} inline:{inline}"

    @classmethod
    def parse(cls, value: str) -> SdesCrypto:
        """Parse ``1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4`` (``a=crypto:`` prefix optional)."""
        match = _ATTRIBUTE.match(value.strip())
        if match is None:
            raise ValueError(f"malformed crypto attribute: {value!r}")
        tag_text, suite, key_params, session_params = match.groups()
        if suite not in _PROFILES:
            raise ValueError(f"unsupported SRTP crypto suite: {suite}")
        if session_params:
            # UNENCRYPTED_SRTP, KDR, FEC_ORDER, ... change the transform, which libsrtp's
            # profiles here do not express; refusing is safer than recording garbage.
            raise ValueError(f"unsupported SDES session parameters: {session_params}")
        if ";" in key_params:
            raise ValueError("multiple SDES master keys in one crypto attribute are not supported")
        if not key_params.startswith("inline:"):
            raise ValueError(f"crypto key method is not inline: {key_params!r}")
        fields = key_params[len("inline:") :].split("|")
        if len(fields) > 3:
            raise ValueError(f"too many fields in SDES key parameters: {key_params!r}")
        try:
            material = base64.b64decode(fields[0], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"SDES key is not valid base64: {exc}") from None
        if len(material) != MASTER_KEY_LENGTH + MASTER_SALT_LENGTH:
            raise ValueError(
                f"SDES key and salt must be {MASTER_KEY_LENGTH + MASTER_SALT_LENGTH} bytes, got {len(material)}"
            )
        lifetime: int | None = None
        mki: tuple[int, int] | None = None
        for extra in fields[1:]:
            if mki_match := _MKI.match(extra):
                if mki is not None:
                    raise ValueError(f"duplicate MKI in SDES key parameters: {key_params!r}")
                mki_length = int(mki_match.group(2))
                if not 1 <= mki_length <= 128:
                    raise ValueError(f"SDES MKI length out of range: {mki_length}")
                mki = (int(mki_match.group(1)), mki_length)
            elif (life_match := _LIFETIME.match(extra)) and lifetime is None and mki is None:
                power, plain = life_match.groups()
                lifetime = 1 << int(power) if power is not None else int(plain)
            else:
                raise ValueError(f"malformed SDES key parameter: {extra!r}")
        return cls(
            tag=int(tag_text),
            suite=suite,
            master_key=material[:MASTER_KEY_LENGTH],
            master_salt=material[MASTER_KEY_LENGTH:],
            lifetime=lifetime,
            mki=mki,
        )


def generate_crypto_line(tag: int, suite: str = "AES_CM_128_HMAC_SHA1_80") -> tuple[str, SdesCrypto]:
    """A fresh random key: the ``a=crypto`` attribute value and its parsed form."""
    if suite not in _PROFILES:
        raise ValueError(f"unsupported SRTP crypto suite: {suite}")
    if not 0 <= tag <= 999_999_999:
        raise ValueError(f"crypto tag out of range: {tag}")
    crypto = SdesCrypto(
        tag=tag,
        suite=suite,
        master_key=secrets.token_bytes(MASTER_KEY_LENGTH),
        master_salt=secrets.token_bytes(MASTER_SALT_LENGTH),
    )
    return crypto.attribute_value(), crypto


def _session(crypto: SdesCrypto, ssrc_type: int) -> pylibsrtp.Session:
    if crypto.suite not in _PROFILES:
        raise ValueError(f"unsupported SRTP crypto suite: {crypto.suite}")
    if crypto.mki is not None:
        raise ValueError("SRTP master key identifiers (MKI) are not supported")
    policy = pylibsrtp.Policy(
        key=crypto.key_and_salt, ssrc_type=ssrc_type, srtp_profile=_PROFILES[crypto.suite]
    )
    return pylibsrtp.Session(policy=policy)


class SrtpReplay(ValueError):
    """An SRTP packet already received (replay check): a duplicate, not an authentication failure."""


class SrtpReceiver:
    """Verifies and decrypts the SRTP/SRTCP packets a sender protected with ``crypto``.

    Packets that fail authentication (or cannot even be checked: too short,
    malformed) raise ``ValueError``; replays raise its subclass :class:`SrtpReplay`.
    """

    __slots__ = ("_session",)

    def __init__(self, crypto: SdesCrypto) -> None:
        self._session = _session(crypto, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def unprotect(self, packet: bytes) -> bytes:
        try:
            return bytes(self._session.unprotect(packet))
        except pylibsrtp.Error as exc:
            if "replay" in str(exc):
                raise SrtpReplay(f"SRTP packet replayed: {exc}") from None
            raise ValueError(f"SRTP packet rejected: {exc}") from None

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._session.unprotect_rtcp(packet))
        except pylibsrtp.Error as exc:
            raise ValueError(f"SRTCP packet rejected: {exc}") from None


class SrtpSender:
    """Protects RTP/RTCP packets with ``crypto`` (test SRCs, demos)."""

    __slots__ = ("_session",)

    def __init__(self, crypto: SdesCrypto) -> None:
        self._session = _session(crypto, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)

    def protect(self, rtp: bytes) -> bytes:
        try:
            return bytes(self._session.protect(rtp))
        except pylibsrtp.Error as exc:
            raise ValueError(f"SRTP protect failed: {exc}") from None

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        try:
            return bytes(self._session.protect_rtcp(rtcp))
        except pylibsrtp.Error as exc:
            raise ValueError(f"SRTCP protect failed: {exc}") from None
