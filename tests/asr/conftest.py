"""Speech-analytics tests: the API as `callvault serve` answers it, with the test staff.

Automatic transcription is off in the ``ctx`` of these tests: they store or
transcribe each recording themselves, and a job worker transcribing it at the
same time would race them. The end-to-end tests run the default (on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callvault.settings import Settings
from tests.api.conftest import client, staff
from tests.conftest import make_settings

__all__ = ["client", "settings", "staff"]


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return make_settings(data_dir, database_url, sip_port="0", http_port="0", transcription_auto="false")
