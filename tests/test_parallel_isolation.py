"""What lets the suite run in pytest-xdist workers side by side: each worker's ports are its
own and outside the kernel's ephemeral range, and a port is not handed out twice in a row."""

from __future__ import annotations

import socket

import pytest

from tests.support import ports


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 8])
def test_worker_slices_are_disjoint_and_below_the_ephemeral_range(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    slices = []
    for index in range(workers):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
        slices.append(ports.worker_slice())
    seen: set[int] = set()
    for one in slices:
        assert len(one) >= 2000 and one.start % 2 == 0
        assert 10000 <= one.start and one.stop <= ports._ephemeral_low()
        assert seen.isdisjoint(one)
        seen.update(one)


def test_ports_handed_out_are_distinct_free_and_in_this_workers_slice() -> None:
    mine = ports.worker_slice()
    handed = ports.free_ports(50)
    assert len(set(handed)) == 50 and all(port in mine for port in handed)
    for port in handed[:5]:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", port))  # raises if it was not free
    low, high = (int(end) for end in ports.rtp_range(200).split("-"))
    assert high - low == 200 and low % 2 == 0 and low in mine and high in mine
    assert not set(range(low, high + 1)) & set(handed)
