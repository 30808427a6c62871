# Sourced by scripts/serve and scripts/test (not run on its own): make sure the checkout has
# a working virtual environment in .venv with callvault installed, editable, into it.
#
# Why a venv of our own: Debian and Ubuntu mark their Python "externally managed" (PEP 668)
# and refuse `pip install` outside a virtual environment, and their python3 may lack the
# venv module (package python3-venv), which is installed here when we are root or have sudo.

_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Root, or sudo to become it (it may ask for a password, as for the packages scripts/test installs).
_can_be_root() { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; }

# A python3 new enough for callvault (3.11+): python3 on PATH first, then versioned names.
_find_python() {
  local candidate
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

_apt_install() {
  _as_root apt-get update -qq
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Debian/Ubuntu split `venv`'s ensurepip into python3.X-venv; without it `python -m venv` fails.
_ensure_venv_module() {
  local python=$1 version
  "$python" -c 'import ensurepip, venv' 2>/dev/null && return 0
  version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if command -v apt-get >/dev/null 2>&1 && _can_be_root; then
    echo "Installing python${version}-venv (the venv module of $python) ..." >&2
    _apt_install "python${version}-venv" || _apt_install python3-venv || true
  fi
  "$python" -c 'import ensurepip, venv' 2>/dev/null && return 0
  echo "error: $python has no working venv module; install python${version}-venv (Debian/Ubuntu) and retry" >&2
  return 1
}

# make_venv ROOT: ROOT/.venv exists and runs Python 3.11+; an existing, working one is kept.
make_venv() {
  local venv="$1/.venv" python
  "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && return 0
  if ! python=$(_find_python); then
    if command -v apt-get >/dev/null 2>&1 && _can_be_root; then
      # Older releases (Ubuntu 22.04) ship 3.10 as python3 but package 3.11 beside it.
      _apt_install python3.11 python3.11-venv || true
    fi
    python=$(_find_python) || {
      echo "error: callvault needs Python 3.11 or newer (python3 --version)" >&2
      return 1
    }
  fi
  _ensure_venv_module "$python" || return 1
  echo "Creating the virtual environment $venv with $python ..." >&2
  "$python" -m venv --clear "$venv"
}

# install_into_venv ROOT SPEC: `pip install -e SPEC` (SPEC is "." or ".[test]", relative to
# ROOT) into ROOT/.venv, skipped when done before with the same pyproject.toml.
install_into_venv() {
  local root=$1 spec=$2 venv="$1/.venv" stamp wanted
  stamp="$venv/.callvault-install"
  wanted="$spec $(cksum <"$root/pyproject.toml") $root"
  [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && return 0
  echo "Installing callvault$([ "$spec" = . ] || echo " with ${spec#.}") into $venv ..." >&2
  (cd "$root" && "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec") || return 1
  echo "$wanted" >"$stamp"
}

ensure_venv() {
  make_venv "$1" && install_into_venv "$1" "$2"
}
