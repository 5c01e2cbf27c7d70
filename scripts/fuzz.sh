#!/usr/bin/env bash
# Fuzz the input parsers with libFuzzer + ASan + UBSan, one harness after the other:
#   scripts/fuzz.sh [SECONDS]        (default 60 seconds per harness)
# Targets (tests/fuzz/fuzz_<name>.c): csv, model_file, config, record, batch, infer, fast.
# FUZZ_TARGETS="csv config" limits the run to some of them.
#
# Installs clang and libclang-rt-14-dev (libFuzzer's runtime) if missing, configures the
# separate build directory build-fuzz (every library compiled with sanitizer coverage),
# then for each harness:
#   1. replays every file of tests/fuzz/corpus/<name>/ once: a file that still crashes is a
#      known, unfixed regression (counted as a failure, and left out of step 2 so it does
#      not stop the fuzzer at its first input);
#   2. fuzzes for SECONDS on a copy of the corpus in a temporary directory (the repository
#      is never written), with crashes, leaks and timeouts saved as artifacts there.
# Prints per harness: executions, new crashes, corpus size before/after; exits non-zero if
# any harness crashed (new or known). The work directory (logs, artifacts, grown corpora)
# is kept and its path printed; add a crash reproducer to tests/fuzz/corpus/<name>/ so
# `meson test -C build-fuzz --suite fuzz` replays it from then on.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration="${1:-60}"
case "$duration" in
'' | *[!0-9]*) ae_die "usage: scripts/fuzz.sh [SECONDS] (got '$duration')" ;;
esac
read -r -a targets <<<"${FUZZ_TARGETS:-csv model_file config record batch infer fast}"

ae_install "${AE_BUILD_PACKAGES[@]}" "${AE_TEST_PACKAGES[@]}" clang libclang-rt-14-dev

# The fuzz subdir needs the tests option; NDEBUG off so the libraries' asserts fire too;
# debugoptimized so crash stacks name file:line. (src/core/simd.h drops target_clones under
# clang, which the fuzz build uses.)
ae_build_targets=()
for t in "${targets[@]}"; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || ae_die "unknown target '$t' (no tests/fuzz/fuzz_$t.c)"
    ae_build_targets+=("fuzz_$t")
done
# shellcheck disable=SC2054  # the commas belong to b_sanitize's value
fuzz_options=(-Dfuzz=true -Dtests=true -Dbuildtype=debugoptimized -Db_sanitize=address,undefined
              "-Dc_args=-fsanitize=fuzzer-no-link" -Db_lundef=false
              -Db_ndebug=false)
CC=clang ae_setup build-fuzz "${fuzz_options[@]}" || ae_die "cannot configure build-fuzz"
# `setup --reconfigure` keeps the c_args of an existing directory; `configure` applies them.
meson configure build-fuzz "${fuzz_options[@]}" >/dev/null || ae_die "cannot configure build-fuzz"
ae_say "building ${ae_build_targets[*]} in build-fuzz"
meson compile -C build-fuzz "${ae_build_targets[@]}" || ae_die "cannot build the harnesses"

work="$(mktemp -d "${TMPDIR:-/tmp}/aescore-fuzz.XXXXXX")"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:symbolize=1"

max_len_of() {
    case "$1" in
    model_file) echo 16384 ;; # a minimal model is ~4.2 KB (the percentile table alone is 4 KB)
    batch | infer) echo 8192 ;; # room for max_batch (50) records
    *) echo 4096 ;;
    esac
}

dict_of() {
    case "$1" in
    record | batch | infer) echo tests/fuzz/json.dict ;;
    config) echo tests/fuzz/config.dict ;;
    csv) echo tests/fuzz/csv.dict ;;
    esac
}

# Prints the sanitizer's first line and the top frames of the crashing stack in log $1 (the
# first stack only, without sanitizer, libFuzzer and libc frames).
stack_top() {
    grep -m1 -E '^==[0-9]+==ERROR|check failed|runtime error|^SUMMARY' "$1" || true
    awk '/^==[0-9]+==ERROR|check failed|runtime error/ { on = 1 }
         on && /^ +#[0-9]+ / { print; seen = 1; next }
         on && seen { exit }' "$1" |
        grep -v -E ' in (__sanitizer|__asan|__ubsan|__interceptor|abort|raise|fuzzer::|main|_start|__libc|__pthread)|libc\.so' |
        head -n 4 || true
}

declare -A execs new_crashes known_crashes corpus_before corpus_after
failed=0
summary_lines=()

for t in "${targets[@]}"; do
    exe="build-fuzz/tests/fuzz/fuzz_$t"
    src_corpus="tests/fuzz/corpus/$t"
    corpus="$work/corpus/$t"
    artifacts="$work/artifacts/$t"
    log="$work/$t.log"
    mkdir -p "$corpus" "$artifacts"
    known_crashes[$t]=0

    # 1. regression inputs: each seed on its own, crashing ones are reported and left out
    for f in "$src_corpus"/*; do
        [ -f "$f" ] || continue
        if "$exe" -runs=0 -max_len=65536 "$f" >"$work/replay.log" 2>&1; then
            cp "$f" "$corpus/"
        else
            known_crashes[$t]=$((known_crashes[$t] + 1))
            ae_say "$t: corpus file $f still crashes:"
            stack_top "$work/replay.log" | sed 's/^/      /' >&2
        fi
    done
    corpus_before[$t]="$(find "$corpus" -type f | wc -l)"

    # 2. fuzz
    dict="$(dict_of "$t")"
    args=(-max_total_time="$duration" -max_len="$(max_len_of "$t")" -timeout=25
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
    [ -n "$dict" ] && args+=(-dict="$dict")
    ae_say "fuzzing $t for ${duration}s (corpus: ${corpus_before[$t]} files; log: $log)"
    set +e
    timeout --kill-after=30 $((duration + 300)) "$exe" "${args[@]}" "$corpus" >"$log" 2>&1
    rc=$?
    set -e

    execs[$t]="$(grep -m1 -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)"
    if [ -z "${execs[$t]}" ]; then # no final stats (killed): the last status line
        execs[$t]="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    fi
    new_crashes[$t]="$(find "$artifacts" -type f | wc -l)"
    corpus_after[$t]="$(find "$corpus" -type f | wc -l)"
    if [ "$rc" -ne 0 ] && [ "${new_crashes[$t]}" -eq 0 ]; then
        new_crashes[$t]=1 # died without an artifact (e.g. the timeout above): still a failure
        ae_say "$t: the fuzzer exited with status $rc and wrote no artifact; see $log"
    fi
    if [ "${new_crashes[$t]}" -gt 0 ]; then
        ae_say "$t: crash found:"
        find "$artifacts" -type f -printf '      reproducer: %p (%s bytes)\n' >&2
        stack_top "$log" | sed 's/^/      /' >&2
    fi
    if [ "${new_crashes[$t]}" -gt 0 ] || [ "${known_crashes[$t]}" -gt 0 ]; then
        failed=1
    fi
    summary_lines+=("$(printf '%-11s %12s %12s %14s %16s' "$t" "${execs[$t]:-?}" \
        "${new_crashes[$t]}" "${known_crashes[$t]}" "${corpus_before[$t]} -> ${corpus_after[$t]}")")
done

printf '\n%-11s %12s %12s %14s %16s\n' target executions new-crashes known-crashes corpus
printf '%s\n' "${summary_lines[@]}"
printf '\nwork directory (logs, artifacts, grown corpora): %s\n' "$work"
if [ "$failed" -ne 0 ]; then
    printf 'FAILED: at least one harness crashed; reproducers are under %s/artifacts\n' "$work"
    exit 1
fi
