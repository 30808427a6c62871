"""Run a `callvault` command in the test process, through the console script's own entry
point (``callvault.cli:main``, reading ``sys.argv``).

A `callvault` subprocess costs seconds of interpreter start-up and imports on a loaded
machine; tests of what a command does (its output, exit status, effects on the vault) run
it here instead. Tests about the process itself (serve, signals, logs, refusing to start)
keep :func:`tests.support.processes.run_cli`.
"""

from __future__ import annotations

import subprocess
import sys
import traceback

import pytest
from click.testing import CliRunner

from callvault.cli import main


def invoke_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Like ``run_cli``: ``env`` is laid over the environment while the command runs, and the
    result carries its exit status and its separate stdout and stderr text."""
    argv = ["callvault", *args]
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _), pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        try:
            main()
            status = 0
        except SystemExit as exc:
            status = _exit_status(exc.code)
        except Exception:
            # What the interpreter prints before exiting with status 1.
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    return subprocess.CompletedProcess(argv, status, _text(out.getvalue()), _text(err.getvalue()))


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): Python prints it and exits with 1
    return 1


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
