#!/usr/bin/env bash
# The learning-loop benchmark (bench_loop.py) on a lent GPU machine, from the repo root.
#
# The embedded model's 517 MB HF folder cannot travel there (64 MiB per call), so its
# published GGUF (94 MiB, sha256 pinned in mgpt/llm/local/store.py) goes in two parts, one per
# call, made here with `benchmarks/gpu_loop.sh --split FILE.gguf` into the ignored .gpu/:
#   call 1: carry [".gpu/smol.gguf.part-00"]           command: ls -l .gpu
#   call 2: carry [".gpu/smol.gguf.part-01", ".whl"]   command: OUT=$OUT bash benchmarks/gpu_loop.sh
# .whl/ holds the wheels the machine lacks (pydantic, pydantic-core, annotated-types,
# typing-inspection, gguf, xgrammar, apache-tvm-ffi). Call 2 joins and checks the parts,
# converts the GGUF once, and runs one bench_loop process per seed at the same time (each a
# toy preflight, then the real run with --max-minutes), then merges them. It leaves in $OUT:
# summary.json and table.md (merged), seedN/{summary.json,table.md,log.txt}, merge.txt and
# artifacts.tgz (distil data, checked samples, DPO pairs). Arguments go to every process.
# Environment knobs: SEEDS (default "1 2 3"), MINUTES (per process, default 6), LIMIT (hard
# timeout per process, s; default 540), PREFLIGHT=0; for a rehearsal on a CPU machine
# (cp312 wheels would shadow its own packages) WHEELS=0 DEVICE=cpu.
set -u
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ "${1:-}" = "--split" ]; then  # here: make the two parts in .gpu/ (ignored by git)
    src=${2:?usage: gpu_loop.sh --split FILE.gguf}
    echo "$SHA  $src" | sha256sum -c --quiet || { echo "$src is not the embedded model's GGUF"; exit 2; }
    mkdir -p .gpu && rm -f .gpu/smol.gguf.part-*
    exclude=$(git rev-parse --git-path info/exclude) && mkdir -p "$(dirname "$exclude")"
    grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
    split -b 48m -d "$src" .gpu/smol.gguf.part- && ls -l .gpu
    exit
fi
OUT=${OUT:?set OUT to the folder whose files come back}
mkdir -p "$OUT"
if [ "${WHEELS:-1}" = 1 ] && compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
mkdir -p /tmp/pp && ln -sfn "$PWD" /tmp/pp/mgpt && export PYTHONPATH=/tmp/pp${PYTHONPATH:+:$PYTHONPATH}
MODEL=/tmp/smol.gguf
cat .gpu/smol.gguf.part-* > "$MODEL" 2>/dev/null
echo "$SHA  $MODEL" | sha256sum -c --quiet || { ls -l .gpu; echo "the GGUF parts are missing or incomplete: carry both (see the top of this file)"; exit 2; }
export MGPT_SANDBOX=none PYTHONUNBUFFERED=1
# One process per seed, side by side on the one GPU: a 135M model's decode step is bound by
# launch and Python overhead, not by the GPU, so each process gets its own interpreter and
# the seeds cost the wall time of one. The checks share the cores.
BASE=/tmp/smol-hf
python3 -c "import sys; from pathlib import Path; from mgpt.llm.local.store import convert_gguf; convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))" "$MODEL" "$BASE" || exit 1
pre=--preflight; [ "${PREFLIGHT:-1}" = 0 ] && pre=
seeds=(${SEEDS:-1 2 3})
workers=$(( $(nproc) / ${#seeds[@]} )); [ "$workers" -lt 2 ] && workers=2
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
if command -v nvidia-smi > /dev/null; then  # GPU memory and load every 10 s, for the record
    ( while sleep 10; do echo "$(date +%T) $(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader)"; done ) \
        > "$OUT/gpu_usage.txt" 2>&1 &
    monitor=$!
fi
pids=()
for s in "${seeds[@]}"; do
    mkdir -p "$OUT/seed$s"
    timeout "${LIMIT:-540}" python3 benchmarks/bench_loop.py --model "$BASE" --device "${DEVICE:-cuda}" --seeds "$s" \
        --workers "$workers" --max-minutes "${MINUTES:-6}" $pre --out "$OUT/seed$s" --artifacts "/tmp/loop-art/seed$s" \
        "$@" > "$OUT/seed$s/log.txt" 2>&1 &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
[ -n "${monitor:-}" ] && kill "$monitor" 2>/dev/null
for s in "${seeds[@]}"; do tail -n 12 "$OUT/seed$s/log.txt"; done
python3 benchmarks/bench_loop.py --merge "$OUT"/seed*/summary.json --out "$OUT" 2>&1 | tee "$OUT/merge.txt"
tar czf "$OUT/artifacts.tgz" -C /tmp/loop-art . 2>/dev/null
exit "$rc"
