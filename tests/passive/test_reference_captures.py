"""Real-world captures of the reference corpus (an extra, see tests.support.reference) import without
errors: every answered call sealed, nothing refused, no frame counted as damage."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from callvault.runtime.passive.pcap_import import OfflineSealing, import_capture
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext
from tests.support.reference import corpus_names

# Calls each capture holds (answered INVITE dialogs), as read in Wireshark's VoIP calls view.
ANSWERED = {
    "sip-rtp-g726.pcap": 8,
    "sip-rtp-l16.pcap": 4,
    "sip-rtp-speex.pcap": 3,
    "aaa.pcap": 0,
    "ipip.pcap": 0,
}


@pytest.mark.parametrize("name", corpus_names("pcaps"))
def test_reference_capture_imports_without_errors(
    reference_dir: Path, ctx: ServiceContext, name: str
) -> None:
    path = reference_dir / name
    source = IngestSource("import", user="test")

    async def run() -> object:
        with ThreadPoolExecutor(1) as renders:
            sealing = OfflineSealing(ctx, renders)
            try:
                return await import_capture(ctx, path.read_bytes(), path.name, source, sealing.seal)
            finally:
                sealing.close()

    result = asyncio.run(run())
    assert result.error is None and result.damage == {}, result  # type: ignore[attr-defined]
    assert result.sealed == len(result.recording_ids)  # type: ignore[attr-defined]
    if path.parent.name == "wireshark-samples":
        assert len(result.recording_ids) == ANSWERED.get(path.name, 1)  # type: ignore[attr-defined]
