"""Speech-analytics tests: the API as `callvault serve` answers it, with the test staff."""

from __future__ import annotations

from tests.api.conftest import client, staff

__all__ = ["client", "staff"]
