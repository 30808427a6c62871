from __future__ import annotations

import base64

import pytest

from callvault.rtp.packet import RtpPacket
from callvault.rtp.srtp import SdesCrypto, SrtpReceiver, SrtpSender, generate_crypto_line

KEY = bytes(range(30))
INLINE = base64.b64encode(KEY).decode()


def rtp(seq: int) -> bytes:
    return RtpPacket(
        payload_type=0, sequence_number=seq, timestamp=160 * seq, ssrc=0xCAFE, payload=b"\x7f" * 160
    ).serialize()


def test_parse_full_attribute_with_lifetime_and_mki() -> None:
    crypto = SdesCrypto.parse(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^20|1:32")
    assert crypto.tag == 1
    assert crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert crypto.master_key == KEY[:16] and crypto.master_salt == KEY[16:]
    assert crypto.lifetime == 2**20
    assert crypto.mki == (1, 32)
    assert SdesCrypto.parse(crypto.attribute_value()) == crypto
    plain = SdesCrypto.parse(f"2 AES_CM_128_HMAC_SHA1_32 inline:{INLINE}")
    assert (plain.tag, plain.lifetime, plain.mki) == (2, None, None)
    assert SdesCrypto.parse(f"crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|1:4").mki == (1, 4)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "malformed crypto attribute"),
        (f"1 AES_256_CM_HMAC_SHA1_80 inline:{INLINE}", "unsupported SRTP crypto suite"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!", "not valid base64"),
        (
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY[:20]).decode()}",
            "must be 30 bytes, got 20",
        ),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{INLINE}", "not inline"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^x", "malformed SDES key parameter"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|1:4|2^20", "malformed SDES key parameter"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE} UNENCRYPTED_SRTP", "unsupported SDES session"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE};inline:{INLINE}", "multiple SDES master keys"),
    ],
)
def test_bad_crypto_lines_are_rejected(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        SdesCrypto.parse(line)


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_protect_unprotect_round_trip(suite: str) -> None:
    line, crypto = generate_crypto_line(7, suite)
    assert line.startswith(f"7 {suite} inline:")
    sender = SrtpSender(crypto)
    receiver = SrtpReceiver(SdesCrypto.parse(line))
    for seq in range(1, 50):
        protected = sender.protect(rtp(seq))
        assert len(protected) == len(rtp(seq)) + (10 if suite.endswith("80") else 4)
        assert protected[12:] != rtp(seq)[12:]
        assert receiver.unprotect(protected) == rtp(seq)
    report = b"\x80\xc9\x00\x01\x00\x00\xca\xfe"
    assert receiver.unprotect_rtcp(sender.protect_rtcp(report)) == report


def test_tampered_replayed_and_foreign_packets_are_rejected() -> None:
    _, crypto = generate_crypto_line(1)
    sender = SrtpSender(crypto)
    receiver = SrtpReceiver(crypto)
    first = sender.protect(rtp(1))
    assert receiver.unprotect(first) == rtp(1)
    with pytest.raises(ValueError, match="replay"):
        receiver.unprotect(first)
    tampered = bytearray(sender.protect(rtp(2)))
    tampered[20] ^= 0x01
    with pytest.raises(ValueError, match="authentication failure"):
        receiver.unprotect(bytes(tampered))
    _, other = generate_crypto_line(1)
    with pytest.raises(ValueError, match="SRTP packet rejected"):
        SrtpReceiver(other).unprotect(sender.protect(rtp(3)))


def test_unsupported_key_options_are_refused_at_setup() -> None:
    with_mki = SdesCrypto.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^20|1:4")
    with pytest.raises(ValueError, match="MKI"):
        SrtpReceiver(with_mki)
    with pytest.raises(ValueError, match="unsupported SRTP crypto suite"):
        generate_crypto_line(1, "F8_128_HMAC_SHA1_80")
