#!/usr/bin/env bash
# The Debian package under a real systemd, on Debian 12 as root:
#   scripts/systemd-test.sh [PACKAGE.deb]
# Builds the .deb (on a copy of the tree) unless one is given, boots a bookworm root with
# systemd-nspawn -b (--register=no --keep-unit --private-network), installs the package and
# checks: the socket enabled and listening, the service started by the first connection
# (READY: active), a score, systemctl reload, a retrain saved under /var/lib/aescored, a
# root-only token handed over with LoadCredential=, the watchdog (pings keep the service up;
# a frozen daemon is killed and restarted), the start limit on a broken config, and a clean
# systemctl stop. lintian checks the package first (errors fail). The root (debootstrap
# minbase + systemd + curl) is cached as a tarball in /var/cache/aescore/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ae_install systemd-container debootstrap debhelper dpkg-dev fakeroot lintian git \
    "${AE_BUILD_PACKAGES[@]}" libcmocka-dev python3 python3-pytest systemd

cache=/var/cache/aescore
tarball="$cache/bookworm-systemd-aescore2.tar"
work="$(mktemp -d /var/tmp/aescore-systemd.XXXXXX)"
nspawn_pid=""
leader=""
cleanup() {
    if [ -n "$nspawn_pid" ]; then
        # poweroff inside; SIGKILL if the container is still up after 30 s
        [ -n "$leader" ] && timeout 10 nsenter -t "$leader" -a -- systemctl poweroff 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

deb="${1:-}"
if [ -z "$deb" ]; then
    ae_say "building the package in $work/src"
    mkdir -p "$work/src"
    git archive --prefix=aescore/ HEAD | tar -x -C "$work/src"
    (cd "$work/src/aescore" && dpkg-buildpackage -us -uc -b >"$work/dpkg.log" 2>&1) ||
        { tail -30 "$work/dpkg.log" >&2; ae_die "dpkg-buildpackage failed"; }
    deb="$(ls "$work"/src/aescore_*_amd64.deb)"
fi
ae_say "lintian $(basename "$deb")"
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$work/lintian.log" >&2 ||
    ae_die "lintian reports errors"

if [ ! -s "$tarball" ]; then
    ae_say "debootstrap bookworm with systemd (cached as $tarball)"
    # the package's runtime libraries too: the booted container has no network for apt
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,curl,ca-certificates,procps,libcjson1,libinih1,libmicrohttpd12 \
        bookworm "$work/bootstrap"
    rm -rf "$work"/bootstrap/var/cache/apt/archives/*.deb
    mkdir -p "$cache"
    tar -C "$work/bootstrap" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$work/bootstrap"
fi
root="$work/root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
mkdir -p "$root/opt/aescore-test"  # not /tmp: nspawn mounts a tmpfs there
cp "$deb" "$root/opt/aescore-test/aescore.deb"
cp data/examples/record.json "$root/opt/aescore-test/record.json"

ae_say "booting $root"
systemd-nspawn -q -b -D "$root" --register=no --keep-unit --private-network \
    >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!
for _ in $(seq 1 100); do
    leader="$(ps -o pid= --ppid "$nspawn_pid" | tr -d ' ' | head -1 || true)"
    # nspawn's first child may be an intermediate process: wait for init itself
    [ -n "$leader" ] && [ "$(ps -o comm= -p "$leader" || true)" = systemd ] && break
    leader=""
    sleep 0.1
done
[ -n "$leader" ] || ae_die "no init in the container"
ct() { nsenter -t "$leader" -a -- "$@"; }
for _ in $(seq 1 60); do
    state="$(ct systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running | degraded) break ;; esac
    sleep 1
done
ae_say "container system state: $state"

fail=0
check() {
    local what="$1"
    shift
    if "$@"; then ae_say "ok: $what"; else ae_say "FAILED: $what"; fail=1; fi
}

ct dpkg -i /opt/aescore-test/aescore.deb >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log" >&2; ae_die "dpkg -i failed"; }
check "the package enables and starts the socket" ct systemctl is-active --quiet aescored.socket
check "the service waits for a connection" sh -c "! nsenter -t $leader -a -- systemctl is-active --quiet aescored.service"
# the packaged config has no model to serve: give it the bundled sample
ct sh -c 'echo "bootstrap_data = /usr/share/aescore/credit_default_sample.csv" >> /etc/aescored/aescored.conf'
check "/health through the socket starts the service" \
    ct curl -fsS --retry 5 --retry-connrefused --max-time 60 -o /dev/null http://127.0.0.1:8080/health
check "the service is active (READY=1)" ct systemctl is-active --quiet aescored.service
check "a score" ct curl -fsS -o /dev/null -H 'Content-Type: application/json' \
    --data @/opt/aescore-test/record.json http://127.0.0.1:8080/score
check "systemctl reload" ct systemctl reload aescored.service
check "active after reload" ct systemctl is-active --quiet aescored.service
ct curl -fsS -o /dev/null -H 'Content-Type: text/csv' \
    --data-binary @/usr/share/aescore/credit_default_sample.csv \
    'http://127.0.0.1:8080/retrain?epochs=2&seed=3' || true
for _ in $(seq 1 60); do
    ct test -s /var/lib/private/aescored/model.aes.prev && break
    sleep 0.5
done
check "a retrain saved under the state directory" ct test -s /var/lib/private/aescored/model.aes.prev

# A token readable by root only, handed over as a credential: no path in the config.
ct sh -c 'umask 077 && echo credential-token-5d1e > /etc/aescored/admin_token'
ct mkdir -p /etc/systemd/system/aescored.service.d
ct sh -c 'printf "[Service]\nLoadCredential=admin_token:/etc/aescored/admin_token\nWatchdogSec=3s\n" \
    > /etc/systemd/system/aescored.service.d/test.conf'
ct systemctl daemon-reload
ct systemctl restart aescored.service
# http_is CODE CURL-ARGS...: the container's curl gets that status
http_is() { [ "$(ct curl -s -o /dev/null -w '%{http_code}' "${@:2}")" = "$1" ]; }
check "the credential guards the admin endpoints (401 without it)" \
    http_is 401 -X DELETE http://127.0.0.1:8080/retrain
check "the credential's token opens them (409 no_job)" \
    http_is 409 -X DELETE -H 'Authorization: Bearer credential-token-5d1e' http://127.0.0.1:8080/retrain
check "the journal names the credential, not the token" sh -c \
    "nsenter -t $leader -a -- journalctl -u aescored.service --no-pager | grep -q 'admin_token_file = \$CREDENTIALS_DIRECTORY/admin_token' &&
     ! nsenter -t $leader -a -- journalctl -u aescored.service --no-pager | grep -q credential-token-5d1e"

# The watchdog (WatchdogSec=3s here): pings keep the service up well past it; frozen with
# SIGSTOP, the daemon is killed and restarted by systemd.
restarts="$(ct systemctl show -P NRestarts aescored.service)"
sleep 7
check "watchdog pings keep the service up" sh -c \
    "nsenter -t $leader -a -- systemctl is-active --quiet aescored.service &&
     [ \"\$(nsenter -t $leader -a -- systemctl show -P NRestarts aescored.service)\" = $restarts ]"
ct sh -c 'kill -STOP "$(systemctl show -P MainPID aescored.service)"'
for _ in $(seq 1 30); do
    [ "$(ct systemctl show -P NRestarts aescored.service)" != "$restarts" ] && break
    sleep 0.5
done
check "a frozen daemon is killed by the watchdog and restarted" sh -c \
    "[ \"\$(nsenter -t $leader -a -- systemctl show -P NRestarts aescored.service)\" -gt $restarts ] &&
     nsenter -t $leader -a -- journalctl -u aescored.service --no-pager | grep -qi 'watchdog timeout'"
check "served again after the watchdog restart" \
    ct curl -fsS --retry 10 --retry-connrefused --retry-delay 1 -o /dev/null http://127.0.0.1:8080/health
ct rm -rf /etc/systemd/system/aescored.service.d
ct systemctl daemon-reload
ct systemctl reset-failed aescored.service  # the restarts above count towards the start limit

check "a clean stop" ct systemctl stop aescored.service aescored.socket
check "stopped without failure" sh -c "[ \"\$(nsenter -t $leader -a -- systemctl show -P Result aescored.service)\" = success ]"
ct sh -c 'echo "no_such_key = 1" >> /etc/aescored/aescored.conf'
ct systemctl start aescored.service 2>/dev/null || true
# 3 starts in 60 s (StartLimitBurst=3): the start and 2 restarts, then it stays failed
# (systemd 252 leaves Result=exit-code from the last run; it does not restart again)
for _ in $(seq 1 30); do
    [ "$(ct systemctl show -P ActiveState aescored.service)" = failed ] && break
    sleep 1
done
sleep 6 # longer than RestartSec=2s: a restart would have happened by now
# each try logs the bad key once
tries="$(ct journalctl -u aescored.service --no-pager | grep -c no_such_key || true)"
ae_say "after a broken config: Result=$(ct systemctl show -P Result aescored.service)" \
    "ActiveState=$(ct systemctl show -P ActiveState aescored.service), $tries tries"
check "a broken config stops after 3 tries" sh -c "[ \"\$(nsenter -t $leader -a -- systemctl show -P ActiveState aescored.service)\" = failed ] &&
    [ $tries -eq 3 ]"
check "the journal says the start limit was hit" sh -c \
    "nsenter -t $leader -a -- journalctl -u aescored.service --no-pager | grep -q 'Start request repeated too quickly'"
[ "$fail" -eq 0 ] || ae_die "systemd-test: some checks failed"
echo "systemd-test: ok"
