"""`callvault serve` over HTTPS, its log lines unforgeable, and the accounts commands of the CLI."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from callvault.log_format import SafeFormatter, escape_control
from tests.support.cli import invoke_cli
from tests.support.ports import rtp_range
from tests.support.processes import callvault_command, free_port, run_cli, wait_for


@pytest.fixture
def env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "CALLVAULT_RTP_PORTS": rtp_range(100),
    }


FORGED = "2026-12-02 10:00:00,000 INFO callvault: admin password reset by operator"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "api.crt", folder / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_the_formatter_keeps_one_record_on_one_line() -> None:
    formatter = SafeFormatter("%(levelname)s %(name)s: %(message)s")
    hostile = f"abc@pbx\r\n{FORGED}\x1b[2K\u2028x"
    record = logging.LogRecord(
        "callvault.sip", logging.INFO, __file__, 1, "call %s: started", (hostile,), None
    )
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert line == f"INFO callvault.sip: call abc@pbx\\r\\n{FORGED}\\x1b[2K\\u2028x: started"
    try:
        raise ValueError(f"bad header {hostile}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "ERROR x: failed"
    assert all(line.startswith("    | ") for line in lines[1:])
    assert escape_control("tab\there") == "tab\\there"


def test_https_serve_escaped_logs_and_account_commands(tmp_path: Path, env: dict[str, str]) -> None:
    cert, key = self_signed(tmp_path)
    env = {**env, "CALLVAULT_HTTP_TLS_CERT": str(cert), "CALLVAULT_HTTP_TLS_KEY": str(key)}
    port, sip_port = env["CALLVAULT_HTTP_PORT"], int(env["CALLVAULT_SIP_PORT"])
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            callvault_command() + ["serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def healthy() -> bool:
                assert server.poll() is None, log_path.read_text()[-3000:]
                try:
                    return httpx.get(f"{base}/healthz", verify=trust, timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 90, "callvault serve to answer /healthz over HTTPS")
            health = httpx.get(f"{base}/healthz", verify=trust)
            assert health.json() == {"status": "ok"}
            assert health.headers["strict-transport-security"].startswith("max-age=")
            assert health.headers["x-content-type-options"] == "nosniff"
            try:
                plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
            except httpx.HTTPError:
                plain = None
            assert plain != 200  # the port speaks TLS only

            output = log_path.read_text()
            one_time = output.split("one-time password:")[1].split()[0]
            login = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "admin", "password": one_time}, verify=trust
            )
            assert login.status_code == 200 and login.json()["password_change_required"] is True
            token = login.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{base}/api/v1/me", headers=headers, verify=trust).status_code == 403

            # Hostile text in a username and in a SIP Call-ID cannot forge a log line.
            httpx.post(
                f"{base}/api/v1/auth/token",
                json={"username": f"eve\r\n{FORGED}", "password": "not-the-password"},
                verify=trust,
            )
            call_id = f"x1\r{FORGED}\x1b[2K"
            invite = (
                f"INVITE sip:srs@127.0.0.1:{sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-forge\r\n"
                "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:srs@127.0.0.1>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                "Contact: <sip:a@127.0.0.1:9>\r\nContent-Length: 0\r\n\r\n"
            )
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(invite.encode(), ("127.0.0.1", sip_port))
            wait_for(lambda: "eve" in log_path.read_text() and "x1" in log_path.read_text(), 30, "log lines")

            # The CLI: the one-time password replaced; tokens listed and revoked; a user disabled.
            weak = invoke_cli(
                ["admin", "set-password", "admin", "--password-stdin"], env, stdin="password123\n"
            )
            assert weak.returncode == 2 and "password" in weak.stderr
            assert "password123" not in weak.stderr
            chosen = invoke_cli(
                ["admin", "set-password", "admin", "--password-stdin"], env, stdin="chosen admin passphrase\n"
            )
            assert chosen.returncode == 0, chosen.stderr
            assert httpx.get(f"{base}/api/v1/me", headers=headers, verify=trust).status_code == 200
            made = invoke_cli(
                ["admin", "create-token", "admin", "--label", "ops", "--ttl-hours", "100000"], env
            )
            assert made.returncode == 2  # more than a year is refused outright
            made = invoke_cli(["admin", "create-token", "admin", "--label", "ops"], env)
            assert made.returncode == 0 and made.stdout.startswith("cv_") and "expires" in made.stderr
            listed = invoke_cli(["admin", "list-tokens", "admin"], env)
            rows = [line.split("\t") for line in listed.stdout.splitlines()]
            assert [(r[1], r[4]) for r in rows] == [("ops", "active"), ("login", "active")]
            ops_id = rows[0][0]
            assert (
                invoke_cli(["admin", "revoke-token", "--user", "admin", "--id", ops_id], env).returncode == 0
            )
            ops = {"Authorization": f"Bearer {made.stdout.strip()}"}
            assert httpx.get(f"{base}/api/v1/me", headers=ops, verify=trust).status_code == 401
            assert invoke_cli(["admin", "disable-user", "admin"], env).returncode == 0
            assert httpx.get(f"{base}/api/v1/me", headers=headers, verify=trust).status_code == 401
            assert "admin\tadmin\t-\t\tdisabled" in invoke_cli(["admin", "list-users"], env).stdout
            assert invoke_cli(["admin", "enable-user", "admin"], env).returncode == 0
            assert httpx.get(f"{base}/api/v1/me", headers=headers, verify=trust).status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log_path.read_text(errors="replace")
    lines = text.splitlines()
    assert not any(line.startswith(FORGED[:19]) for line in lines), text[-3000:]
    assert "\x1b" not in text
    assert "x1\\r2026-12-02" in text or "x1\\\\r2026-12-02" in text, text[-3000:]


def test_half_a_tls_configuration_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    cert, _key = self_signed(tmp_path)
    result = run_cli(["serve"], {**env, "CALLVAULT_HTTP_TLS_CERT": str(cert)})  # within run_cli's 120 s
    assert result.returncode == 2
    assert "CALLVAULT_HTTP_TLS_KEY" in result.stderr
