"""The README's two set-up commands work on a stock Debian/Ubuntu Python (PEP 668).

They are exactly ``./scripts/serve`` and ``./scripts/test``; both install into the
checkout's own ``.venv`` (made by the scripts) instead of the system Python, which
Debian and Ubuntu refuse to ``pip install`` into. The venv helper is run for real
here, all but the slow dependency install.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCRIPTS = ROOT / "scripts"


def _setup_section() -> str:
    return README.split("## Set up", 1)[1].split("\n## ", 1)[0]


def test_the_set_up_section_has_exactly_the_two_script_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", _setup_section(), re.DOTALL)
    assert [b.strip() for b in blocks] == ["./scripts/serve", "./scripts/test"]
    # And says where the CLI is afterwards.
    assert ".venv/bin/callvault" in _setup_section() and "source .venv/bin/activate" in _setup_section()
    first_steps = README.split("## First steps", 1)[1].split("\n## ", 1)[0]
    assert first_steps.lstrip().startswith("```sh\nsource .venv/bin/activate")
    assert "pip install" not in README.replace("refuse `pip install`", "")


@pytest.mark.parametrize("name", ["serve", "test"])
def test_scripts_are_executable_bash_that_install_into_the_venv(name: str) -> None:
    script = SCRIPTS / name
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert ". " in code and "_venv.sh" in code
    # Nothing is installed with the system Python: only the venv's pip, through ensure_venv.
    assert "pip install" not in code and "ensure_venv" in code
    if name == "serve":
        assert 'ensure_venv "$root" "."' in text
        assert text.rstrip().endswith('exec "$root/.venv/bin/callvault" serve "$@"')
    else:
        assert 'ensure_venv "$PWD" ".[test]"' in text
        assert 'PATH="$PWD/.venv/bin:$PATH"' in text
        assert (
            'pytest -q -p no:cacheprovider --db=sqlite,postgresql -n "$workers" --dist loadgroup "$@"' in text
        )
        # The Debian set-up steps stay: sipp and PostgreSQL.
        assert "sip-tester" in text and "pg_ctlcluster" in text


def _helper(root: Path, call: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; . "{SCRIPTS / "_venv.sh"}"; {call}'],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _system_python_path() -> str:
    """A PATH whose python3 is the distribution's (externally managed on Debian/Ubuntu) when it
    is 3.11+, else the one running the tests: never one that would make the helper apt-install."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        new_enough = (
            subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"], capture_output=True
            )
            if Path(candidate).exists()
            else None
        )
        if new_enough is not None and new_enough.returncode == 0:
            return f"{Path(candidate).parent}:/usr/bin:/bin"
    return f"{Path(sys.executable).parent}:/usr/bin:/bin"


def test_make_venv_creates_a_working_venv_and_keeps_an_existing_one(tmp_path: Path) -> None:
    first = _helper(tmp_path, f'make_venv "{tmp_path}"', _system_python_path())
    assert first.returncode == 0, first.stderr
    python = tmp_path / ".venv" / "bin" / "python"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, pip; print(sys.prefix != sys.base_prefix, sys.version_info >= (3, 11))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["True", "True"]  # a real venv, with pip, on 3.11+
    marker = tmp_path / ".venv" / "kept"
    marker.write_text("an existing venv is reused, not rebuilt")
    again = _helper(tmp_path, f'make_venv "{tmp_path}"')
    assert again.returncode == 0 and "Creating" not in again.stderr and marker.exists()


def test_install_runs_pip_in_the_venv_once_per_pyproject(tmp_path: Path) -> None:
    # A venv without pip: an install attempt fails, so success proves it was skipped.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    tried = _helper(tmp_path, f'install_into_venv "{tmp_path}" ".[test]"')
    assert tried.returncode != 0 and "Installing callvault with [test]" in tried.stderr
    assert "No module named pip" in tried.stderr  # it ran the venv's own python -m pip
    cksum = subprocess.run(
        ["cksum"], stdin=(tmp_path / "pyproject.toml").open(), capture_output=True, text=True, check=True
    )
    stamp = tmp_path / ".venv" / ".callvault-install"
    stamp.write_text(f".[test] {cksum.stdout.strip()} {tmp_path}\n")
    skipped = _helper(tmp_path, f'install_into_venv "{tmp_path}" ".[test]"')
    assert skipped.returncode == 0 and skipped.stderr == ""
    # A changed pyproject.toml (new dependency) installs again.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert _helper(tmp_path, f'install_into_venv "{tmp_path}" ".[test]"').returncode != 0


def test_a_python_without_the_venv_module_is_reported_not_crashed(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    # A python3 whose venv/ensurepip are missing, as on Debian without python3-venv.
    (fake / "python3").write_text(
        f'#!/bin/sh\ncase "$*" in *ensurepip*) exit 1;; esac\nexec "{sys.executable}" "$@"\n'
    )
    (fake / "python3").chmod(0o755)
    # Not root, and sudo refuses (as without the password): nothing may be installed from here.
    for name, script in (("id", "echo 1000"), ("sudo", "exit 1"), ("apt-get", "exit 99")):
        (fake / name).write_text(f"#!/bin/sh\n{script}\n")
        (fake / name).chmod(0o755)
    result = _helper(tmp_path, f'_ensure_venv_module "{fake / "python3"}"', f"{fake}:/usr/bin:/bin")
    assert result.returncode == 1
    assert re.search(r"install python3\.\d+-venv \(Debian/Ubuntu\)", result.stderr)


def test_a_missing_venv_module_is_installed_with_apt_as_root(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    installed = tmp_path / "installed"
    calls = tmp_path / "apt-calls"
    # python3 has no ensurepip until "apt-get install" has run; we are root.
    scripts = {
        "python3": f'case "$*" in *ensurepip*) [ -e "{installed}" ] || exit 1;; esac\nexec "{sys.executable}" "$@"',
        "id": "echo 0",
        "apt-get": f'echo "$*" >> "{calls}"\ncase "$*" in *install*) touch "{installed}";; esac',
    }
    for name, script in scripts.items():
        (fake / name).write_text(f"#!/bin/sh\n{script}\n")
        (fake / name).chmod(0o755)
    result = _helper(tmp_path, f'_ensure_venv_module "{fake / "python3"}"', f"{fake}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert calls.read_text().splitlines() == ["update -qq", f"install -y -qq python{version}-venv"]
