"""Passive capture tests reuse the API tests' server (the serve composition root, in a thread)."""

from tests.api.conftest import client, staff

__all__ = ["client", "staff"]
