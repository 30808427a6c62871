from tests.api.conftest import client, serving, staff  # noqa: F401  (shared API fixtures)
