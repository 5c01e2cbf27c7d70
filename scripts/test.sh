#!/usr/bin/env bash
# shellcheck disable=SC2317  # the stage_* functions are called indirectly ("stage_$stage")
# Build and run every test, as CI does (.ci/run), on a fresh Debian 12 machine as root:
#   scripts/test.sh
# Installs what is missing with apt-get, then runs five stages:
#   build-ci    debugoptimized, warnings are errors          meson test (all suites)
#   build-asan  debug, AddressSanitizer + UBSan, -Werror     meson test (all suites)
#   build-tsan  debug, ThreadSanitizer                       meson test --suite concurrency
#   build-fuzz  clang, libFuzzer + ASan + UBSan              scripts/fuzz.sh 20 (per harness)
#   systemd     the .deb (lintian-checked) under a real systemd in systemd-nspawn
#               (scripts/systemd-test.sh; the bookworm root is cached in /var/cache/aescore)
# Every stage runs even if an earlier one failed; the exit status is non-zero if any failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ae_install "${AE_BUILD_PACKAGES[@]}" "${AE_TEST_PACKAGES[@]}"
ae_install_node

stage_ci() {
    ae_build build-ci --buildtype=debugoptimized -Dwerror=true || return 1
    ae_say "testing build-ci"
    meson test -C build-ci --print-errorlogs
}

stage_asan() {
    ae_build build-asan -Db_sanitize=address,undefined -Dbuildtype=debug -Dwerror=true ||
        return 1
    ae_say "testing build-asan (ASan + UBSan, leak detection on)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs
}

tsan_note=""
stage_tsan() {
    ae_build build-tsan -Db_sanitize=thread -Dbuildtype=debug || return 1
    local listed passed log=build-tsan/meson-logs/testlog.json
    listed="$(meson introspect build-tsan --tests | python3 -c '
import json, sys
print(sum(any(s.split(":")[-1] == "concurrency" for s in t["suite"]) for t in json.load(sys.stdin)))
')" || return 1
    if [ "$listed" -eq 0 ]; then
        # a stage that checked nothing must not read "ok"
        tsan_note=" (suite 'concurrency' has no tests)"
        ae_say "build-tsan: suite 'concurrency' has no tests: ThreadSanitizer checked nothing"
        return 1
    fi
    tsan_note=" ($listed tests)"
    ae_say "testing build-tsan: suite concurrency, $listed tests"
    rm -f "$log" # so a stale log cannot count below
    # setarch -R: ThreadSanitizer's fixed shadow layout breaks with high mmap ASLR entropy.
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        setarch "$(uname -m)" -R meson test -C build-tsan --suite concurrency --print-errorlogs ||
        return 1
    # meson exits 0 when tests are skipped (exit 77) too: every listed test must have run
    # and passed, as its log (one JSON object per test) records.
    passed="$(python3 -c '
import json, sys
print(sum(json.loads(line)["result"] == "OK" for line in open(sys.argv[1]) if line.strip()))
' "$log")" || return 1
    tsan_note=" ($passed of $listed tests passed)"
    if [ "$passed" -ne "$listed" ]; then
        ae_say "build-tsan: only $passed of the $listed concurrency tests ran and passed"
        return 1
    fi
}

# Every parser of untrusted input under libFuzzer for a short while (issue: "CI runs each
# for a short time"); scripts/fuzz.sh replays the regression corpora first. AESCORE_FUZZ_SECONDS
# changes the time per harness, 0 skips the stage.
stage_fuzz() {
    local seconds="${AESCORE_FUZZ_SECONDS:-20}"
    if [ "$seconds" -eq 0 ]; then
        ae_say "fuzz stage skipped (AESCORE_FUZZ_SECONDS=0)"
        return 0
    fi
    scripts/fuzz.sh "$seconds"
}

# The package installed and run under a real systemd: socket activation, READY, reload,
# a retrain, credentials, the watchdog, the start limit and a clean stop.
stage_systemd() {
    scripts/systemd-test.sh
}

start=$SECONDS
summary=()
failed=0
for stage in ci asan tsan fuzz systemd; do
    t0=$SECONDS
    tsan_note=""
    if "stage_$stage"; then
        result="ok"
    else
        result="FAILED"
        failed=1
    fi
    summary+=("$stage ${result}${tsan_note} $((SECONDS - t0))s")
    ae_say "stage $stage: $result"
done

if [ "$failed" -eq 0 ]; then
    verdict=PASS
else
    verdict=FAIL
fi
line="$(printf '%s, ' "${summary[@]}")"
echo "test.sh: $verdict in $((SECONDS - start))s: ${line%, }"
exit "$failed"
