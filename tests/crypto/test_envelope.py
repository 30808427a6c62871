"""Chunked AES-256-GCM envelope: round trips, range reads, tamper detection."""

from __future__ import annotations

import math
import random
import re
import struct
from collections import Counter
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callvault.crypto.envelope import (
    HEADER_SIZE,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    TAG_SIZE,
    EncryptedObjectReader,
    ObjectEncryptor,
    ciphertext_size,
    decrypt_object,
    encrypt_object,
    new_data_key,
)
from callvault.errors import IntegrityError, InvalidInput, RangeNotSatisfiable

OBJECT_ID = "rec-0001/archive.opus"


def reader_over(blob: bytes, calls: list[tuple[int, int]] | None = None) -> Callable[[int, int], bytes]:
    """read_range with BlobStore.get_range semantics (short read at the end)."""

    def read_range(start: int, length: int) -> bytes:
        if calls is not None:
            calls.append((start, length))
        return blob[start : start + length]

    return read_range


def chunk_span(index: int, chunk_size: int) -> slice:
    start = HEADER_SIZE + index * (chunk_size + TAG_SIZE)
    return slice(start, start + chunk_size + TAG_SIZE)


@pytest.fixture
def key() -> bytes:
    return new_data_key()


ROUND_TRIP_CASES = [
    (size, chunk_size)
    for chunk_size in (1, 100, 65536)
    for size in (0, 1, 99, 100, 101, 1000, 65536 * 2 + 7)
    if chunk_size > 1 or size <= 1000
]


@pytest.mark.parametrize(("size", "chunk_size"), ROUND_TRIP_CASES)
def test_round_trip(size: int, chunk_size: int, key: bytes) -> None:
    plaintext = random.Random(size).randbytes(size)
    blob = encrypt_object(plaintext, key, OBJECT_ID, chunk_size)
    assert len(blob) == ciphertext_size(size, chunk_size)
    assert decrypt_object(blob, key, OBJECT_ID) == plaintext
    reader = EncryptedObjectReader(reader_over(blob), key, OBJECT_ID)
    assert reader.plaintext_size == size
    assert reader.read(0, size) == plaintext
    assert b"".join(reader.iter_chunks()) == plaintext


def test_new_data_key_is_random_32_bytes() -> None:
    keys = {new_data_key() for _ in range(8)}
    assert len(keys) == 8 and all(len(k) == 32 for k in keys)


def test_same_plaintext_encrypts_differently(key: bytes) -> None:
    plaintext = b"OggS" * 1000
    assert encrypt_object(plaintext, key, OBJECT_ID) != encrypt_object(plaintext, key, OBJECT_ID)


def test_streaming_encryptor_matches_any_feeding_pattern(key: bytes) -> None:
    rng = random.Random(7)
    plaintext = rng.randbytes(10_000)
    encryptor = ObjectEncryptor(key, OBJECT_ID, len(plaintext), chunk_size=333)
    pieces, pos = [], 0
    while pos < len(plaintext):
        step = rng.choice([0, 1, 5, 332, 333, 334, 1200])
        pieces.append(encryptor.update(plaintext[pos : pos + step]))
        pos += step
    pieces.append(encryptor.finish())
    blob = b"".join(pieces)
    assert pieces[0][:4] == b"CVE1"
    assert len(blob) == ciphertext_size(len(plaintext), 333)
    assert decrypt_object(blob, key, OBJECT_ID) == plaintext


def test_streaming_encryptor_enforces_declared_length(key: bytes) -> None:
    encryptor = ObjectEncryptor(key, OBJECT_ID, 10, chunk_size=4)
    out = [encryptor.update(b"12345678")]
    with pytest.raises(InvalidInput, match="more than the declared 10"):
        encryptor.update(b"abc")
    with pytest.raises(InvalidInput, match="only 8 were fed"):
        encryptor.finish()
    out += [encryptor.update(b"90"), encryptor.finish()]
    assert decrypt_object(b"".join(out), key, OBJECT_ID) == b"1234567890"
    with pytest.raises(InvalidInput, match="already finished"):
        encryptor.update(b"")


def test_each_complete_chunk_leaves_the_encryptor_at_once(key: bytes) -> None:
    """A streaming writer holds at most one chunk: a chunk that is complete (and not the
    last) is sealed by the update that completed it, not kept until more arrives."""
    encryptor = ObjectEncryptor(key, OBJECT_ID, 3 * 100, chunk_size=100)
    first = encryptor.update(bytes(100))
    assert len(first) == HEADER_SIZE + 100 + TAG_SIZE
    assert len(encryptor.update(bytes(100))) == 100 + TAG_SIZE
    assert encryptor.update(bytes(100)) == b""  # the last chunk waits for finish() and its flag
    assert len(encryptor.finish()) == 100 + TAG_SIZE


def test_misuse_is_refused_with_its_exact_reason(key: bytes) -> None:
    with pytest.raises(InvalidInput) as prefetch:
        EncryptedObjectReader(
            reader_over(encrypt_object(b"x", key, OBJECT_ID)), key, OBJECT_ID, prefetch_chunks=0
        )
    assert str(prefetch.value) == "prefetch_chunks must be at least 1"
    encryptor = ObjectEncryptor(key, OBJECT_ID, 0)
    encryptor.finish()
    with pytest.raises(InvalidInput) as finished:
        encryptor.update(b"")
    assert str(finished.value) == "encryptor already finished"


def test_wrong_key_size_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        encrypt_object(b"x", b"short", OBJECT_ID)


def test_random_range_reads_cross_chunk_boundaries(key: bytes) -> None:
    rng = random.Random(2024)
    chunk_size = 512
    plaintext = rng.randbytes(chunk_size * 9 + 123)
    blob = encrypt_object(plaintext, key, OBJECT_ID, chunk_size)
    reader = EncryptedObjectReader(reader_over(blob), key, OBJECT_ID, prefetch_chunks=3)
    edges = [0, 1, chunk_size - 1, chunk_size, chunk_size + 1, len(plaintext) - 1, len(plaintext)]
    cases = [(a, b) for a in edges for b in edges if a <= b]
    for _ in range(300):
        a = rng.randrange(len(plaintext) + 1)
        cases.append((a, rng.randrange(a, len(plaintext) + 1)))
    for start, end in cases:
        assert reader.read(start, end) == plaintext[start:end], (start, end)
        assert b"".join(reader.iter_chunks(start, end)) == plaintext[start:end], (start, end)


def test_range_read_fetches_only_needed_chunks(key: bytes) -> None:
    chunk_size = 1000
    plaintext = bytes(range(256)) * 40  # 10 240 bytes: 11 chunks
    blob = encrypt_object(plaintext, key, OBJECT_ID, chunk_size)
    calls: list[tuple[int, int]] = []
    reader = EncryptedObjectReader(reader_over(blob, calls), key, OBJECT_ID)
    calls.clear()
    assert reader.read(2500, 3500) == plaintext[2500:3500]
    offset, length = reader.ciphertext_range_for(2500, 3500)
    assert calls == [(offset, length)]
    assert offset == HEADER_SIZE + 2 * (chunk_size + TAG_SIZE)
    assert length == 2 * (chunk_size + TAG_SIZE)


def test_streaming_fetches_one_chunk_first_then_growing_batches(key: bytes) -> None:
    chunk_size = 100
    plaintext = bytes(1050)  # 11 chunks
    blob = encrypt_object(plaintext, key, OBJECT_ID, chunk_size)
    calls: list[tuple[int, int]] = []
    reader = EncryptedObjectReader(reader_over(blob, calls), key, OBJECT_ID, prefetch_chunks=4)
    calls.clear()
    stream = reader.iter_chunks()
    assert next(stream) == bytes(100)
    assert calls == [(HEADER_SIZE, chunk_size + TAG_SIZE)]
    assert b"".join(stream) == plaintext[100:]
    chunks_per_call = [round(length / (chunk_size + TAG_SIZE)) for _, length in calls]
    assert chunks_per_call == [1, 2, 4, 4]


def test_iter_chunks_yields_chunk_sized_pieces(key: bytes) -> None:
    plaintext = bytes(5000)
    blob = encrypt_object(plaintext, key, OBJECT_ID, 1024)
    reader = EncryptedObjectReader(reader_over(blob), key, OBJECT_ID)
    assert [len(p) for p in reader.iter_chunks(1000, 4100)] == [24, 1024, 1024, 1024, 4]
    assert list(reader.iter_chunks(5000, 5000)) == []
    assert reader.read(4990, 10**9) == plaintext[4990:]


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (10, 5), (5001, 5002)])
def test_unsatisfiable_ranges(start: int, end: int, key: bytes) -> None:
    blob = encrypt_object(bytes(5000), key, OBJECT_ID, 1024)
    reader = EncryptedObjectReader(reader_over(blob), key, OBJECT_ID)
    with pytest.raises(RangeNotSatisfiable):
        reader.read(start, end)


# -- tampering -----------------------------------------------------------------

CHUNK = 256
PLAINTEXT = bytes(range(256)) * 5 + b"tail"  # 5 full chunks + a 4-byte last chunk


@pytest.fixture
def blob(key: bytes) -> bytes:
    return encrypt_object(PLAINTEXT, key, OBJECT_ID, CHUNK)


def both_paths_fail(blob: bytes, key: bytes, match: str, object_id: str = OBJECT_ID) -> None:
    with pytest.raises(IntegrityError, match=match):
        decrypt_object(blob, key, object_id)
    with pytest.raises(IntegrityError, match=match):
        reader = EncryptedObjectReader(reader_over(blob), key, object_id)
        reader.read(0, reader.plaintext_size)


@pytest.mark.parametrize("position", list(range(HEADER_SIZE)))
def test_flipped_header_byte_is_detected(position: int, blob: bytes, key: bytes) -> None:
    damaged = bytearray(blob)
    damaged[position] ^= 0x01
    both_paths_fail(bytes(damaged), key, "header|object")


def test_flipped_chunk_byte_names_the_chunk(blob: bytes, key: bytes) -> None:
    damaged = bytearray(blob)
    damaged[chunk_span(3, CHUNK).start + 17] ^= 0x80
    both_paths_fail(bytes(damaged), key, "chunk 3 of 6 failed authentication")


def test_flipped_tag_byte_is_detected(blob: bytes, key: bytes) -> None:
    damaged = bytearray(blob)
    damaged[chunk_span(1, CHUNK).stop - 1] ^= 0x01
    both_paths_fail(bytes(damaged), key, "chunk 1 of 6")


@pytest.mark.parametrize("where", ["first byte", "last ciphertext byte", "tag"])
def test_flipped_byte_in_the_last_chunk_is_detected(where: str, blob: bytes, key: bytes) -> None:
    # The last chunk is the short one, sealed by finish() with its own flag: it is checked too.
    last = chunk_span(5, CHUNK).start
    position = {"first byte": last, "last ciphertext byte": last + 3, "tag": len(blob) - 1}[where]
    damaged = bytearray(blob)
    damaged[position] ^= 0x01
    both_paths_fail(bytes(damaged), key, "chunk 5 of 6 failed authentication")
    reader = EncryptedObjectReader(reader_over(bytes(damaged)), key, OBJECT_ID)
    assert reader.read(0, 5 * CHUNK) == PLAINTEXT[: 5 * CHUNK]  # the chunks before it are intact
    with pytest.raises(IntegrityError, match="chunk 5 of 6"):
        reader.read(len(PLAINTEXT) - 1, len(PLAINTEXT))
    with pytest.raises(IntegrityError, match="chunk 5 of 6"):
        list(reader.iter_chunks(5 * CHUNK - 1))


@pytest.mark.parametrize("size", [0, 1, CHUNK])
def test_flipped_byte_in_a_single_chunk_object_is_detected(size: int, key: bytes) -> None:
    # One chunk is first and last at once; an empty object still carries a tag.
    single = encrypt_object(PLAINTEXT[:size], key, OBJECT_ID, CHUNK)
    for position in range(HEADER_SIZE, len(single)):
        damaged = bytearray(single)
        damaged[position] ^= 0x01
        if size:
            both_paths_fail(bytes(damaged), key, "chunk 0 of 1 failed authentication")
        else:  # the reader has no byte to read, so only the whole-object path opens the chunk
            with pytest.raises(IntegrityError, match="chunk 0 of 1 failed authentication"):
                decrypt_object(bytes(damaged), key, OBJECT_ID)


def test_truncated_last_chunk_is_detected(blob: bytes, key: bytes) -> None:
    both_paths_fail(blob[:-1], key, "truncated")


def test_dropped_last_chunk_is_detected(blob: bytes, key: bytes) -> None:
    both_paths_fail(blob[: chunk_span(5, CHUNK).start], key, "chunk 5 of 6 incomplete")


def test_swapped_chunks_are_detected(blob: bytes, key: bytes) -> None:
    one, two = chunk_span(1, CHUNK), chunk_span(2, CHUNK)
    swapped = blob[: one.start] + blob[two] + blob[one] + blob[two.stop :]
    assert len(swapped) == len(blob)
    both_paths_fail(swapped, key, "chunk 1 of 6 failed")


def test_appended_bytes_are_detected(blob: bytes, key: bytes) -> None:
    both_paths_fail(blob + blob[chunk_span(0, CHUNK)], key, "after the last chunk")


def test_chunk_from_another_object_is_detected(blob: bytes, key: bytes) -> None:
    other = encrypt_object(PLAINTEXT, key, "rec-0002/archive.opus", CHUNK)
    span = chunk_span(2, CHUNK)
    spliced = blob[: span.start] + other[span] + blob[span.stop :]
    both_paths_fail(spliced, key, "chunk 2 of 6")


def test_cut_at_a_chunk_boundary_is_detected(blob: bytes, key: bytes) -> None:
    both_paths_fail(blob[: chunk_span(2, CHUNK).stop], key, "truncated")


def test_wrong_object_id_is_detected(blob: bytes, key: bytes) -> None:
    both_paths_fail(blob, key, "header failed authentication", object_id="rec-0001/other.opus")


def test_wrong_key_is_detected(blob: bytes) -> None:
    both_paths_fail(blob, new_data_key(), "header failed authentication")


def test_not_an_envelope(key: bytes) -> None:
    both_paths_fail(b"OggS" + bytes(100), key, "not an encrypted callvault object")


def test_reader_detects_damage_only_in_chunks_it_reads(blob: bytes, key: bytes) -> None:
    damaged = bytearray(blob)
    damaged[chunk_span(4, CHUNK).start] ^= 0x01
    reader = EncryptedObjectReader(reader_over(bytes(damaged)), key, OBJECT_ID, prefetch_chunks=1)
    assert reader.read(0, 4 * CHUNK) == PLAINTEXT[: 4 * CHUNK]
    with pytest.raises(IntegrityError, match="chunk 4 of 6"):
        reader.read(4 * CHUNK, 4 * CHUNK + 1)


# -- ciphertext looks random ---------------------------------------------------


def entropy_bits_per_byte(data: bytes) -> float:
    counts = Counter(data)
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts.values())


def test_ciphertext_hides_container_signatures_and_is_high_entropy(key: bytes) -> None:
    # Highly structured plaintext: Ogg/RIFF magics repeated every 4 KiB plus silence.
    page = b"OggS\x00\x02" + b"RIFF" + b"WAVEfmt " + bytes(4096 - 18)
    plaintext = (page * 256)[: 1 << 20]
    assert entropy_bits_per_byte(plaintext) < 1.0
    blob = encrypt_object(plaintext, key, OBJECT_ID)
    body = blob[HEADER_SIZE:]
    for marker in (b"OggS", b"RIFF", b"WAVE", b"\x00" * 16):
        assert marker not in body
    assert entropy_bits_per_byte(body) > 7.9


# -- the stored format, rebuilt independently from the module docstring ----------
# Archived recordings must stay readable: a change to the nonce, the AAD or the last-chunk
# flag would round-trip in tests yet make every stored object undecryptable.

FIELDS = struct.Struct(">4sB3xIQ8s")


def hand_sealed(plaintext: bytes, key: bytes, object_id: str, chunk_size: int, prefix: bytes) -> bytes:
    aead, oid = AESGCM(key), object_id.encode()
    fields = FIELDS.pack(b"CVE1", 1, chunk_size, len(plaintext), prefix)
    out = [fields, aead.encrypt(prefix + b"\xff\xff\xff\xff", b"", fields + oid)]
    count = max(1, -(-len(plaintext) // chunk_size))
    for i in range(count):
        aad = fields + struct.pack(">IB", i, int(i == count - 1)) + oid
        piece = plaintext[i * chunk_size : (i + 1) * chunk_size]
        out.append(aead.encrypt(prefix + i.to_bytes(4, "big"), piece, aad))
    return b"".join(out)


@pytest.mark.parametrize("size", [0, 99, 100, 350])
def test_objects_follow_the_documented_layout(size: int, key: bytes) -> None:
    plaintext = random.Random(size).randbytes(size)
    blob = encrypt_object(plaintext, key, OBJECT_ID, 100)
    prefix = FIELDS.unpack(blob[: FIELDS.size])[4]
    assert blob == hand_sealed(plaintext, key, OBJECT_ID, 100, prefix)
    handmade = hand_sealed(plaintext, key, OBJECT_ID, 100, bytes(range(8)))
    assert decrypt_object(handmade, key, OBJECT_ID) == plaintext
    assert EncryptedObjectReader(reader_over(handmade), key, OBJECT_ID).read(0, size) == plaintext


def test_a_chunk_flagged_last_too_early_is_refused(key: bytes) -> None:
    # Chunk 1 of 3 sealed as if it were the last: the flag is part of what is authenticated.
    plaintext = bytes(250)
    good = hand_sealed(plaintext, key, OBJECT_ID, 100, bytes(8))
    fields = good[: FIELDS.size]
    forged = AESGCM(key).encrypt(
        bytes(8) + (1).to_bytes(4, "big"),
        plaintext[100:200],
        fields + struct.pack(">IB", 1, 1) + OBJECT_ID.encode(),
    )
    start = HEADER_SIZE + 116
    spliced = good[:start] + forged + good[start + 116 :]
    both_paths_fail(spliced, key, "chunk 1 of 3 failed authentication")


# -- streaming encryptor edge cases ----------------------------------------------


def test_finish_alone_seals_an_empty_object(key: bytes) -> None:
    blob = ObjectEncryptor(key, OBJECT_ID, 0).finish()
    assert len(blob) == ciphertext_size(0) and decrypt_object(blob, key, OBJECT_ID) == b""


def test_exact_multiple_of_the_chunk_size_fed_in_odd_pieces(key: bytes) -> None:
    plaintext = random.Random(3).randbytes(300)
    encryptor = ObjectEncryptor(key, OBJECT_ID, 300, chunk_size=100)
    pieces = [encryptor.update(plaintext[a:b]) for a, b in ((0, 50), (50, 100), (100, 250), (250, 300))]
    blob = b"".join([*pieces, encryptor.finish()])
    assert len(blob) == ciphertext_size(300, 100)
    assert decrypt_object(blob, key, OBJECT_ID) == plaintext


def test_overfeeding_and_reuse_messages(key: bytes) -> None:
    encryptor = ObjectEncryptor(key, OBJECT_ID, 10, chunk_size=4)
    encryptor.update(b"123456")
    with pytest.raises(InvalidInput, match=re.escape("fed 11 bytes, more than the declared 10")):
        encryptor.update(b"abcde")
    encryptor.update(b"7890")
    encryptor.finish()
    with pytest.raises(InvalidInput, match="^encryptor already finished$"):
        encryptor.finish()


# -- layout limits and precise messages ------------------------------------------


def test_layout_limits(key: bytes) -> None:
    ObjectEncryptor(key, OBJECT_ID, 10, chunk_size=MAX_CHUNK_SIZE)  # the largest chunk is allowed
    ObjectEncryptor(key, OBJECT_ID, MAX_CHUNKS, chunk_size=1)  # so is the last chunk index
    cases = [
        (10, MAX_CHUNK_SIZE + 1, f"chunk size must be 1 to {MAX_CHUNK_SIZE} bytes, got {MAX_CHUNK_SIZE + 1}"),
        (10, 0, "chunk size must be 1 to"),
        (-1, 100, "plaintext length must not be negative, got -1"),
        (MAX_CHUNKS + 1, 1, f"{MAX_CHUNKS + 1} bytes need more than {MAX_CHUNKS} chunks of 1"),
    ]
    for length, chunk_size, message in cases:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            ObjectEncryptor(key, OBJECT_ID, length, chunk_size=chunk_size)
    with pytest.raises(InvalidInput, match="prefetch_chunks must be at least 1"):
        EncryptedObjectReader(
            reader_over(encrypt_object(b"x", key, OBJECT_ID)), key, OBJECT_ID, prefetch_chunks=0
        )


def test_failure_messages_name_sizes_and_chunks(key: bytes) -> None:
    small = encrypt_object(bytes(100), key, OBJECT_ID, 16)  # 7 chunks of 16 + 16-byte tags
    cut = small[: HEADER_SIZE + 2 * 32 + 5]
    with pytest.raises(
        IntegrityError,
        match=re.escape(f"truncated at {len(cut)} of {len(small)} bytes (chunk 2 of 7 incomplete)"),
    ):
        decrypt_object(cut, key, OBJECT_ID)
    with pytest.raises(IntegrityError, match=re.escape("truncated: chunk 2 of 7 incomplete")):
        EncryptedObjectReader(reader_over(cut), key, OBJECT_ID).read(0, 100)
    with pytest.raises(IntegrityError, match=re.escape("3 unexpected bytes after the last chunk (chunk 6)")):
        decrypt_object(small + b"abc", key, OBJECT_ID)
    with pytest.raises(IntegrityError, match=re.escape("unexpected bytes after the last chunk (chunk 6)")):
        EncryptedObjectReader(reader_over(small + b"abc"), key, OBJECT_ID).read(99, 100)
    with pytest.raises(IntegrityError, match=re.escape(f"header truncated (10 of {HEADER_SIZE} bytes)")):
        decrypt_object(small[:10], key, OBJECT_ID)
    damaged = bytearray(small)
    damaged[HEADER_SIZE] ^= 1
    with pytest.raises(
        IntegrityError,
        match=re.escape("chunk 0 of 7 failed authentication (tampered, truncated, reordered or swapped)"),
    ):
        decrypt_object(bytes(damaged), key, OBJECT_ID)
    with pytest.raises(RangeNotSatisfiable, match=re.escape("range 101-200 is outside the 100-byte object")):
        EncryptedObjectReader(reader_over(small), key, OBJECT_ID).read(101, 200)


def test_ciphertext_ranges_cover_exactly_the_needed_chunks(key: bytes) -> None:
    blob = encrypt_object(bytes(250), key, OBJECT_ID, 100)  # chunks of 100, 100, 50
    reader = EncryptedObjectReader(reader_over(blob), key, OBJECT_ID)
    span = 100 + TAG_SIZE
    assert reader.ciphertext_range_for(10, 10) == (HEADER_SIZE, 0)
    assert reader.ciphertext_range_for(0, 100) == (HEADER_SIZE, span)  # ends on a boundary
    assert reader.ciphertext_range_for(0, 101) == (HEADER_SIZE, 2 * span)
    assert reader.ciphertext_range_for(199, 250) == (HEADER_SIZE + span, len(blob) - HEADER_SIZE - span)
    assert reader.ciphertext_range_for(200, 10**6) == (HEADER_SIZE + 2 * span, 50 + TAG_SIZE)


def test_default_prefetch_grows_to_sixteen_chunks(key: bytes) -> None:
    blob = encrypt_object(bytes(4000), key, OBJECT_ID, 100)  # 40 chunks
    calls: list[tuple[int, int]] = []
    reader = EncryptedObjectReader(reader_over(blob, calls), key, OBJECT_ID)
    calls.clear()
    assert b"".join(reader.iter_chunks()) == bytes(4000)
    assert [round(length / (100 + TAG_SIZE)) for _, length in calls] == [1, 2, 4, 8, 16, 9]
