"""Helpers shared by the test suites (real servers, fixture factories)."""
