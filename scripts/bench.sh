#!/usr/bin/env bash
# aescored over HTTP, measured beside the ceiling of its stack in the same run:
#   scripts/bench.sh [--quick] [--no-callgrind] [--baseline REV] [--out FILE.json]
#
# Arrangement, the same for every target: the server pinned to CPU 1 (taskset -c 1), wrk
# (Debian's) pinned to CPU 0 with one thread, keep-alive, a warm-up, then 3 runs of 15 s,
# medians. Runs of the targets alternate so that a machine changing speed hits both alike
# (these machines drift by up to 20 %: compare the ratios, not the absolute figures).
#  1. POST /score, one record of 50 named features, 32 connections: aescored against nginx
#     answering the same POST with a fixed small JSON (config/nginx/bench-ceiling.conf,
#     access log off): req/s, p50/p99 latency, errors, server CPU per request, ratio.
#     Then the README's credit record (data/examples/record.json: 20 numbers, 3 text fields)
#     to a second daemon serving a model of data/credit_default_sample.csv (default
#     options), alternating with the numeric record: req/s and CPU per request, the ratio.
#  2. POST /score/batch, 1,000 such records (725 KB), 4 connections: records/s, MB/s of
#     request body, and the ratio to the rate at which cJSON alone parses the same body
#     (tests/bench/bench_json on CPU 1). Then POST /v2/models/aescore/infer (KServe v2) of
#     the same records as one [1000, 50] "record" tensor against /score/batch, alternating:
#     the ratio of their times per request.
#  3. POST /score while POST /retrain (8,000 rows, default parameters) runs continuously:
#     a new job starts as soon as one ends. Ratio to the idle figure of 1.; the nice value
#     of every daemon thread. Then POST /score while the served model is swapped every 0.2 s
#     (POST /model/rollback between two models of the history): p99 and each swap's latency.
#     Then the training budget: the time and RSS of refusing a 15 x 4096 network, and how
#     long DELETE /retrain takes to stop jobs of two large shapes within the budget.
#  4. Start to READY=1 with a model file (NOTIFY_SOCKET on a datagram socket of ours,
#     median of 5 starts); RSS after 200 requests (idle) and after 100 retrains of 200 rows.
#  5. Training time of the seed setup (50-32-50 sigmoid, batch 20, 30 epochs on 8,000 rows,
#     the model the daemon serves here; median of 3); instructions per scored record in
#     the core and per POST /score in the whole daemon, from valgrind --tool=callgrind
#     (stable on a noisy machine).
# --quick: 3 s runs, 1 repetition, 1 s warm-up, fewer starts and retrains (for trying
# things; the figures are rougher). --baseline REV also builds REV (a commit, a tag, main)
# in a scratch directory and alternates its daemon with the two of 1.: before and after
# in the same run. The inputs come from scripts/bench/gen.py (the same
# generator and seed as scripts/bench-core.sh); the HTTP driver is scripts/bench/drive.py.
# Ports 18080 (nginx) and 18090 (aescored) on 127.0.0.1 must be free. The release build
# is the portable one users install (no -march=native), in build-bench/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quick=no
callgrind=yes
out=""
baseline=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=yes ;;
    --no-callgrind) callgrind=no ;;
    --baseline)
        baseline="${2:?--baseline REV}"
        shift
        ;;
    --out)
        out="$2"
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) ae_die "unknown option $1 (try --help)" ;;
    esac
    shift
done

ae_install "${AE_BUILD_PACKAGES[@]}" libcmocka-dev python3 python3-pytest wrk nginx util-linux
[ "$callgrind" = yes ] && ae_install valgrind
[ "$(nproc)" -ge 2 ] || ae_die "needs 2 CPUs (server on CPU 1, wrk on CPU 0)"
ae_build build-bench --buildtype=release >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 scripts/bench/gen.py "$work"

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
now() { date +%s.%N; }

if [ "$quick" = yes ]; then
    reps=1 http_args=(--duration 3 --reps 1 --warmup 1 --starts 3 --retrains 20)
else
    reps=3 http_args=()
fi
[ "$callgrind" = yes ] || http_args+=(--only single,credit,batch,oip,train,swap,budget,ready)
[ -n "$out" ] && http_args+=(--out "$out")
if [ -n "$baseline" ]; then
    http_args+=(--baseline-aescored "$(ae_build_rev "$baseline" "$work/base" src/aescored)"
        --baseline-name "$(git -C "$AE_ROOT" rev-parse --short "$baseline")")
fi

ae_say "training the seed setup ($reps run(s))"
: >"$work/train_s"
for _ in $(seq "$reps"); do
    t0=$(now)
    taskset -c 1 build-bench/src/aescore train --data "$work/seed.csv" --out "$work/seed.aes" \
        --quiet --hidden 32 --activation sigmoid --batch 20 --epochs 30 --patience 0 \
        --ensemble 1 --validation-split 0.001
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/train_s"
done

ae_say "training a model of the credit sample (default options)"
build-bench/src/aescore train --data data/credit_default_sample.csv --out "$work/credit.aes" \
    --quiet

python3 scripts/bench/drive.py --aescored build-bench/src/aescored \
    --bench-json build-bench/tests/bench/bench_json --model "$work/seed.aes" --work "$work" \
    --credit-model "$work/credit.aes" --credit-body data/examples/record.json \
    --nginx-conf config/nginx/bench-ceiling.conf "${http_args[@]}"

printf '\ntraining the seed setup (8,000 x 50, 50-32-50, 30 epochs) %7.3f s, median of %d\n' \
    "$(median <"$work/train_s")" "$reps"
if [ "$callgrind" = yes ]; then
    count() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            build-bench/tests/bench/bench_score "$work/seed.aes" --records "$1" 2>&1 |
            awk '/refs:/ {gsub(",", "", $NF); print $NF}'
    }
    a=$(count 1000)
    b=$(count 21000)
    printf 'instructions per scored record     %8.0f   callgrind, core (model_score)\n' \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {print (b - a) / 20000}')"
fi
