#!/usr/bin/env bash
# Core engine speed, measured beside its reference in the same run (these machines are
# noisy: compare the ratios, not the absolute figures):
#   scripts/bench-core.sh [--no-torch]
#
# 1. Training the seed program's setup: 8,000 normal rows x 50 features, 50-32-50 with a
#    sigmoid hidden layer, batch 20, 30 epochs, no early stopping. aescore train (whole
#    command: reading the CSV included) against the same training loop in PyTorch on one
#    thread (scripts/bench_torch_train.py; Debian's python3-torch, installed if missing).
#    Medians of 5 runs each, interleaved.
# 2. In-process scoring of that model on one core: records/s one at a time (model_score
#    with per-feature errors, what /score does) and in batches of 1000.
# 3. Instructions per scored record from valgrind --tool=callgrind (stable on a noisy
#    machine), when valgrind is installed.
# The release build is the portable one users install (no -march=native).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

torch=yes
[ "${1:-}" = "--no-torch" ] && torch=no

ae_install "${AE_BUILD_PACKAGES[@]}" libcmocka-dev python3 python3-pytest
[ "$torch" = yes ] && ae_install python3-numpy python3-torch
ae_build build-bench --buildtype=release >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Correlated rows (8 latent factors mixed into 50 columns plus noise), fixed seed.
python3 - "$work/seed.csv" <<'EOF'
import random, sys
rnd = random.Random(20261129)
mix = [[rnd.gauss(0, 1) for _ in range(8)] for _ in range(50)]
with open(sys.argv[1], "w") as f:
    f.write(",".join("f%d" % i for i in range(50)) + "\n")
    for _ in range(8000):
        z = [rnd.gauss(0, 1) for _ in range(8)]
        f.write(",".join("%.5f" % (sum(a * b for a, b in zip(row, z)) + rnd.gauss(0, 0.1))
                         for row in mix) + "\n")
EOF

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
now() { date +%s.%N; }

train_once() {
    local t0 t1
    t0=$(now)
    build-bench/src/aescore train --data "$work/seed.csv" --out "$work/seed.aes" --quiet \
        --hidden 32 --activation sigmoid --batch 20 --epochs 30 --patience 0 --ensemble 1 \
        --validation-split 0.001
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}

ae_say "training the seed setup, 5 runs each (aescore and PyTorch interleaved)"
: >"$work/ours"
: >"$work/torch"
for _ in 1 2 3 4 5; do
    train_once >>"$work/ours"
    if [ "$torch" = yes ]; then
        OPENBLAS_NUM_THREADS=1 python3 scripts/bench_torch_train.py "$work/seed.csv" |
            awk '{print $2}' >>"$work/torch"
    fi
done
ours=$(median <"$work/ours")
printf 'aescore train (seed setup)     %8.3f s   median of 5\n' "$ours"
if [ "$torch" = yes ]; then
    theirs=$(median <"$work/torch")
    printf 'PyTorch train (seed setup)     %8.3f s   median of 5, 1 thread\n' "$theirs"
    printf 'speed-up                       %8.1f x\n' \
        "$(awk -v a="$theirs" -v b="$ours" 'BEGIN {print a / b}')"
fi

ae_say "scoring the seed model in-process on one core"
taskset -c 0 build-bench/tests/bench/bench_score "$work/seed.aes" 3

if command -v valgrind >/dev/null; then
    count() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            build-bench/tests/bench/bench_score "$work/seed.aes" --records "$1" 2>&1 |
            awk '/refs:/ {gsub(",", "", $NF); print $NF}'
    }
    a=$(count 1000)
    b=$(count 21000)
    printf 'instructions per scored record %8.0f   callgrind, single-record path\n' \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {print (b - a) / 20000}')"
fi
