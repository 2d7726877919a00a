#!/usr/bin/env bash
# Install mgpt with everything — agents, model workshop, embedded-model converter,
# constrained decoding, serving, test tools — on a CPU machine. The README's install command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

# constraints.txt pins torch 2.13.0, the CPU build: resolving the extras never swaps it
# for a multi-GB CUDA build.
"$PY" -m pip install -e ".[all]" -c constraints.txt
# xgrammar (the [local] extra: constrained decoding) without triton, which only GPUs use
# and which weighs about 1 GB.
"$PY" -m pip install --no-deps "xgrammar==0.2.9" "apache-tvm-ffi==0.1.15.post2"
# The wheel cache that generated projects' venvs install from, offline: pytest for every
# project, setuptools and wheel to build pyproject projects.
"$PY" -m pip download --quiet -d "${MGPT_HOME:-$HOME/.cache/mgpt}/wheels" pytest setuptools wheel
