#!/usr/bin/env bash
# Install mgpt with everything — agents, model workshop, embedded-model converter,
# constrained decoding, serving, test tools — on a CPU machine. The README's install command.
#
# First what mgpt needs from the system: bubblewrap, the sandbox generated code runs in. It is
# installed when missing and this machine allows it (apt-get, dnf or pacman; as root, or through
# sudo without a password prompt); otherwise the one command to run is printed and the install
# goes on. Last, `mgpt doctor --only sandbox` checks that bwrap can create the namespaces mgpt
# uses (some containers and hardened kernels forbid them) and names the way out where it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

say() { printf 'install.sh: %s\n' "$*"; }

# The package manager's command that installs bubblewrap, or nothing when none is known here.
bwrap_package_command() {
  if command -v apt-get >/dev/null 2>&1; then
    echo "apt-get install -y bubblewrap"
  elif command -v dnf >/dev/null 2>&1; then
    echo "dnf install -y bubblewrap"
  elif command -v pacman >/dev/null 2>&1; then
    echo "pacman -S --noconfirm bubblewrap"
  fi
}

install_bubblewrap() {
  command -v bwrap >/dev/null 2>&1 && return 0
  local cmd as=""
  cmd="$(bwrap_package_command)"
  if [ -z "$cmd" ]; then
    say "bubblewrap (bwrap) is missing and there is no apt-get, dnf or pacman here: install bubblewrap with your package manager"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
      as="sudo -n"
    else
      say "bubblewrap (bwrap) is missing and installing it needs root; run: sudo $cmd"
      return 0
    fi
  fi
  say "installing bubblewrap: ${as:+$as }$cmd"
  # A fresh Debian/Ubuntu image has no package lists yet.
  if [[ $cmd == apt-get* ]] && ! $as env DEBIAN_FRONTEND=noninteractive apt-get update -qq; then
    say "apt-get update failed; install bubblewrap yourself: ${as:+sudo }$cmd"
    return 0
  fi
  # shellcheck disable=SC2086  # $as and $cmd are words on purpose
  if ! $as env DEBIAN_FRONTEND=noninteractive $cmd; then
    say "could not install bubblewrap; install it yourself: ${as:+sudo }$cmd"
  fi
}

install_bubblewrap

# constraints.txt pins torch 2.13.0, the CPU build: resolving the extras never swaps it
# for a multi-GB CUDA build.
"$PY" -m pip install -e ".[all]" -c constraints.txt
# xgrammar (the [local] extra: constrained decoding) without triton, which only GPUs use
# and which weighs about 1 GB.
"$PY" -m pip install --no-deps "xgrammar==0.2.9" "apache-tvm-ffi==0.1.15.post2"
# The wheel cache that generated projects' venvs install from, offline: pytest for every
# project, setuptools and wheel to build pyproject projects. Run by the Python mgpt runs on,
# so pytest's own needs on that version come too (3.10: exceptiongroup and tomli).
"$PY" -m pip download --quiet -d "${MGPT_HOME:-$HOME/.cache/mgpt}/wheels" pytest setuptools wheel

# Can bwrap create the namespaces mgpt uses? (One line; with the way out when it cannot.)
"$PY" -m mgpt doctor --only sandbox || true
say "done; \`mgpt doctor\` checks the whole set-up (model, wheel cache, config, key, server)"
