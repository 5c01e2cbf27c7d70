#!/usr/bin/env bash
# Big files in bounded memory (issue 16), measured beside reading the same file with wc -l
# in the same run (these machines are noisy: compare the ratios):
#   scripts/bench-stream.sh [--baseline REV]
#
# The file: the bundled credit sample (3,525 rows, 20 numeric and 3 text columns and a
# label) repeated 300 times: 1,057,500 rows, 117 MB. For each command: peak RSS
# (/usr/bin/time -f %M), wall seconds, and seconds over wc -l's.
#   wc -l FILE
#   aescore score --model M --data FILE            (M trained on the sample)
#   aescore train --data FILE --max-rows 100000 --epochs 1 --ensemble 1
# --baseline REV builds REV (e.g. main) in a scratch directory and runs its score, and its
# train on the whole file (it has no --max-rows), beside this tree's.
# The release build is the portable one users install (no -march=native).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

baseline=""
[ "${1:-}" = "--baseline" ] && baseline="${2:?--baseline REV}"

ae_install "${AE_BUILD_PACKAGES[@]}" time
ae_build build-bench --buildtype=release >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ours="$AE_ROOT/build-bench/src/aescore"
base=""
if [ -n "$baseline" ]; then
    base="$(ae_build_rev "$baseline" "$work/base" src/aescore)"
fi

sample="$AE_ROOT/data/credit_default_sample.csv"
big="$work/big.csv"
ae_say "writing the sample 300 times into $big"
head -n 1 "$sample" >"$big"
for _ in $(seq 300); do tail -n +2 "$sample"; done >>"$big"
rows=$(($(wc -l <"$big") - 1))
mib=$(du -m "$big" | cut -f1)

SOURCE_DATE_EPOCH=1700000000 "$ours" train --data "$sample" --out "$work/m.aes" --quiet \
    --epochs 5 --ensemble 1

# measure LABEL CMD...: one line "LABEL RSS_MiB SECONDS" (seconds from date, to the
# millisecond: wc -l takes a few hundredths, and time's %e has two decimals)
measure() {
    local label="$1" t0 t1
    shift
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/t" "$@" >/dev/null 2>"$work/err" ||
        { cat "$work/err" >&2; ae_die "$label failed"; }
    t1=$(date +%s.%N)
    awk -v l="$label" -v a="$t0" -v b="$t1" '{printf "%s %.1f %.3f\n", l, $1 / 1024, b - a}' \
        "$work/t"
}

wc -l "$big" >/dev/null # the page cache, for everyone
{
    measure "wc-l" wc -l "$big"
    measure "score" "$ours" score --model "$work/m.aes" --data "$big"
    measure "train--max-rows-100000" "$ours" train --data "$big" --out "$work/t.aes" --quiet \
        --max-rows 100000 --epochs 1 --ensemble 1 --max-train-memory 0
    if [ -n "$base" ]; then
        measure "baseline-score" "$base" score --model "$work/m.aes" --data "$big"
        measure "baseline-train-all-rows" "$base" train --data "$big" --out "$work/b.aes" \
            --quiet --epochs 1 --ensemble 1 --max-train-memory 0
    fi
    measure "wc-l-again" wc -l "$big"
} >"$work/results"

ae_say "$rows rows, $mib MiB; seconds over wc -l's (the faster of its two runs)"
awk 'NR == FNR && /^wc-l/ {if (!w || $3 < w) w = $3; next}
     NR == FNR {next}
     {r = w > 0 ? $3 / w : 0; printf "%-26s %8.1f MiB %8.3f s %9.1f x wc -l\n", $1, $2, $3, r}' \
    "$work/results" "$work/results"
