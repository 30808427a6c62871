"""What encryption at rest costs playback of a one-hour recording.

Run: ``python bench/vault.py [--seconds 3600] [--repeat 30]``. Prints figures; not a test.

The object is one hour of Ogg Opus at ~24 kbit/s (stereo, 12 kbit/s per
channel), about 10.8 MB. Random bytes stand in for the Opus payload: AES-GCM
cost does not depend on the content, and random data keeps the plaintext read
honest (no compression anywhere in the path). Both files sit in a temporary
directory, so reads come from the page cache after the first pass: the figures
compare CPU cost of the two paths, not disk latency.

* TTFB (time to first byte of playback): open the file and return the first
  64 KiB of plaintext. Plain: ``open`` + ``pread``. Encrypted: ``open`` +
  :class:`EncryptedObjectReader` (reads and authenticates the header) + first
  piece of an open-ended ``iter_chunks()`` stream, as the API streams playback. Median of ``--repeat`` runs.
* Encrypt: whole object in memory (``encrypt_object``), median of ``--passes``.
* Throughput: stream the whole object in 64 KiB pieces (plain: 1 MiB preads
  split like the reader's 16-chunk prefetch; encrypted: ``iter_chunks``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from callvault.crypto.envelope import DEFAULT_CHUNK_SIZE, EncryptedObjectReader, encrypt_object, new_data_key

OBJECT_ID = "recordings/2024/05/01/rec-bench/archive.opus"
BITRATE_BPS = 24_000


def pread_range(fd: int) -> Callable[[int, int], bytes]:
    def read_range(start: int, length: int) -> bytes:
        return os.pread(fd, length, start)

    return read_range


def plain_first_chunk(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, DEFAULT_CHUNK_SIZE, 0)
    finally:
        os.close(fd)


def encrypted_first_chunk(path: Path, key: bytes) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = EncryptedObjectReader(pread_range(fd), key, OBJECT_ID)
        return next(reader.iter_chunks())
    finally:
        os.close(fd)


def plain_stream(path: Path) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, batch = 0, DEFAULT_CHUNK_SIZE * 16
        while data := os.pread(fd, batch, offset):
            offset += len(data)
            view = memoryview(data)
            for pos in range(0, len(data), DEFAULT_CHUNK_SIZE):
                yield bytes(view[pos : pos + DEFAULT_CHUNK_SIZE])
    finally:
        os.close(fd)


def encrypted_stream(path: Path, key: bytes) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield from EncryptedObjectReader(pread_range(fd), key, OBJECT_ID).iter_chunks()
    finally:
        os.close(fd)


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def drain(stream: Iterator[bytes]) -> int:
    return sum(len(piece) for piece in stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3600, help="recording length (default one hour)")
    parser.add_argument("--repeat", type=int, default=200, help="TTFB repetitions (median reported)")
    parser.add_argument("--passes", type=int, default=10, help="full-read passes (median reported)")
    args = parser.parse_args()

    size = args.seconds * BITRATE_BPS // 8
    plaintext = os.urandom(size)
    key = new_data_key()
    with tempfile.TemporaryDirectory(prefix="callvault-bench-") as tmp:
        plain_path, enc_path = Path(tmp, "plain.opus"), Path(tmp, "archive.opus.cve")
        plain_path.write_bytes(plaintext)
        blob = encrypt_object(plaintext, key, OBJECT_ID)
        encrypt_s = median_seconds(lambda: encrypt_object(plaintext, key, OBJECT_ID), args.passes)
        enc_path.write_bytes(blob)
        assert encrypted_first_chunk(enc_path, key) == plaintext[:DEFAULT_CHUNK_SIZE]
        assert drain(encrypted_stream(enc_path, key)) == size

        ttfb_plain = median_seconds(lambda: plain_first_chunk(plain_path), args.repeat)
        ttfb_enc = median_seconds(lambda: encrypted_first_chunk(enc_path, key), args.repeat)
        full_plain = median_seconds(lambda: drain(plain_stream(plain_path)), args.passes)
        full_enc = median_seconds(lambda: drain(encrypted_stream(enc_path, key)), args.passes)

    mb = size / 1e6
    print(f"object: {args.seconds} s at {BITRATE_BPS // 1000} kbit/s = {mb:.1f} MB plaintext (random bytes)")
    print(f"stored: {len(blob) / 1e6:.2f} MB encrypted ({len(blob) - size} bytes overhead), chunk 64 KiB")
    print(f"encrypt (in memory):      {encrypt_s * 1e3:8.1f} ms   {mb / encrypt_s:8.0f} MB/s")
    print(f"TTFB plain file:          {ttfb_plain * 1e6:8.1f} us")
    print(f"TTFB encrypted object:    {ttfb_enc * 1e6:8.1f} us   ({ttfb_enc / ttfb_plain:.1f}x plain)")
    print(f"full read plain:          {full_plain * 1e3:8.1f} ms   {mb / full_plain:8.0f} MB/s")
    print(
        f"full decrypt encrypted:   {full_enc * 1e3:8.1f} ms   {mb / full_enc:8.0f} MB/s   "
        f"({full_enc / full_plain:.1f}x plain time)"
    )
    realtime = args.seconds / full_enc
    print(f"decrypt speed vs playback: {realtime:,.0f}x real time")


if __name__ == "__main__":
    main()
