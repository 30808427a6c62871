"""The one contract every BlobStore honours, run against each implementation."""

from __future__ import annotations

import os

import pytest

from callvault.errors import InvalidInput, NotFound
from callvault.storage.blobstore import BlobStore

UNSAFE_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/./b",
    "",
    "a\\b",
    "a\x00b",
    "a/",
    "a/../b",
    "..",
    "sp ace",
    "x" * 513,
]


def test_satisfies_the_protocol(blob_store: BlobStore) -> None:
    assert isinstance(blob_store, BlobStore)
    assert blob_store.describe()


def test_put_get_round_trip(blob_store: BlobStore) -> None:
    blob_store.put("recordings/2024/06/call-1.opus.enc", b"hello vault")
    assert blob_store.get("recordings/2024/06/call-1.opus.enc") == b"hello vault"


def test_overwrite_replaces_whole_object(blob_store: BlobStore) -> None:
    blob_store.put("obj", b"a much longer first version")
    blob_store.put("obj", b"short")
    assert blob_store.get("obj") == b"short"
    assert blob_store.size("obj") == 5


def test_binary_data_every_byte_value(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 4 + b"\x00\r\n\x00"
    blob_store.put("bin/all-bytes", data)
    assert blob_store.get("bin/all-bytes") == data


def test_empty_object(blob_store: BlobStore) -> None:
    blob_store.put("empty", b"")
    assert blob_store.exists("empty")
    assert blob_store.size("empty") == 0
    assert blob_store.get("empty") == b""
    assert blob_store.get_range("empty", 0, 10) == b""


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 4, b"0123"),  # start
        (3, 4, b"3456"),  # middle
        (8, 10, b"89"),  # runs past the end: fewer bytes
        (10, 5, b""),  # starts exactly at the end
        (25, 5, b""),  # starts past the end
        (4, 0, b""),  # zero length
        (0, 10, b"0123456789"),  # exactly the whole object
    ],
)
def test_get_range(blob_store: BlobStore, start: int, length: int, expected: bytes) -> None:
    blob_store.put("ranged", b"0123456789")
    assert blob_store.get_range("ranged", start, length) == expected


@pytest.mark.parametrize(("start", "length"), [(-1, 4), (0, -1)])
def test_negative_range_is_invalid(blob_store: BlobStore, start: int, length: int) -> None:
    blob_store.put("ranged", b"0123456789")
    with pytest.raises(InvalidInput):
        blob_store.get_range("ranged", start, length)


def test_size_and_exists(blob_store: BlobStore) -> None:
    assert not blob_store.exists("a/b")
    blob_store.put("a/b", b"x" * 1234)
    assert blob_store.exists("a/b")
    assert blob_store.size("a/b") == 1234
    # A "directory" on the way to a key is not an object.
    assert not blob_store.exists("a")


def test_delete_is_idempotent(blob_store: BlobStore) -> None:
    blob_store.put("d/x", b"1")
    blob_store.put("d/y", b"2")
    blob_store.delete("d/x")
    assert not blob_store.exists("d/x")
    blob_store.delete("d/x")
    blob_store.delete("never/existed")
    assert blob_store.get("d/y") == b"2"
    assert list(blob_store.list()) == ["d/y"]


def test_list_in_lexical_order_with_prefix(blob_store: BlobStore) -> None:
    keys = ["b", "a/c", "a-b", "a.x", "a/b/z", "a/b/a", "rec/2024-01/1", "rec/2024-02/1", "rec/2025/1", "Z"]
    for key in keys:
        blob_store.put(key, key.encode())
    assert list(blob_store.list()) == sorted(keys)
    assert list(blob_store.list("a/")) == ["a/b/a", "a/b/z", "a/c"]
    assert list(blob_store.list("a")) == ["a-b", "a.x", "a/b/a", "a/b/z", "a/c"]
    assert list(blob_store.list("rec/2024-0")) == ["rec/2024-01/1", "rec/2024-02/1"]
    assert list(blob_store.list("rec/2025/1")) == ["rec/2025/1"]
    assert list(blob_store.list("nothing")) == []


def test_list_of_empty_store(blob_store: BlobStore) -> None:
    assert list(blob_store.list()) == []


def test_missing_key_is_not_found(blob_store: BlobStore) -> None:
    blob_store.put("present", b"x")
    with pytest.raises(NotFound):
        blob_store.get("absent")
    with pytest.raises(NotFound):
        blob_store.get_range("absent", 0, 1)
    with pytest.raises(NotFound):
        blob_store.get_range("absent", 0, 0)
    with pytest.raises(NotFound):
        blob_store.size("absent")
    with pytest.raises(NotFound):
        blob_store.get("present/below")
    assert not blob_store.exists("absent")


@pytest.mark.parametrize("key", UNSAFE_KEYS, ids=repr)
def test_unsafe_keys_are_invalid(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        blob_store.put(key, b"x")
    for operation in (blob_store.get, blob_store.size, blob_store.exists, blob_store.delete):
        with pytest.raises(InvalidInput):
            operation(key)
    with pytest.raises(InvalidInput):
        blob_store.get_range(key, 0, 1)
    assert list(blob_store.list()) == []


def test_large_object_round_trip(blob_store: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    blob_store.put("big/object", data)
    assert blob_store.size("big/object") == len(data)
    assert blob_store.get("big/object") == data
    assert blob_store.get_range("big/object", 3_000_000, 100_000) == data[3_000_000:3_100_000]
    assert blob_store.get_range("big/object", len(data) - 5, 100) == data[-5:]
