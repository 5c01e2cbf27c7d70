#!/usr/bin/env bash
# Build the aescored image with podman and smoke-test it, on Debian 12 as root:
#   scripts/image.sh
# No registry is needed: without a localhost/bookworm image, one is imported from a
# `debootstrap --variant=minbase bookworm` root (its tarball cached in /var/cache/aescore/).
# Then `podman build --isolation=chroot` tags localhost/aescore:VERSION, and a container of
# it is checked: /health, /score, a retrain, and a clean stop (exit 0 on SIGTERM).
# AESCORE_IMAGE_PORT (default 18080) is the host port of the test container.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ae_install podman debootstrap runc slirp4netns uidmap curl ca-certificates

version="$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" meson.build | head -1)"
image="localhost/aescore:$version"
base=localhost/bookworm
cache=/var/cache/aescore
port="${AESCORE_IMAGE_PORT:-18080}"

if ! podman image exists "$base"; then
    tarball="$cache/bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        root="$(mktemp -d /var/tmp/aescore-bookworm.XXXXXX)"
        ae_say "debootstrap --variant=minbase bookworm $root"
        debootstrap --variant=minbase bookworm "$root"
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        chmod 755 "$root" # mktemp made it 0700: as / of the image, no other user could enter it
        mkdir -p "$cache"
        tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    ae_say "importing $tarball as $base"
    podman import "$tarball" "$base"
fi

ae_say "building $image"
podman build --isolation=chroot --network host --build-arg BASE="$base" -t "$image" \
    -f Containerfile .

name="aescore-smoke-$$"
work="$(mktemp -d)"
cleanup() {
    podman rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
token="smoke-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -p "$work/secrets"
printf '%s\n' "$token" >"$work/secrets/admin_token"
chmod 0755 "$work/secrets" && chmod 0644 "$work/secrets/admin_token"

ae_say "running $image on 127.0.0.1:$port"
podman run -d --name "$name" --runtime runc \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    --network host \
    -v "$work/secrets:/run/secrets/aescore:ro" \
    -v aescore-smoke-state:/var/lib/aescored \
    "$image" --listen "0.0.0.0:$port" >/dev/null

url="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
    if curl -fs "$url/health" >/dev/null 2>&1; then break; fi
    if [ "$(podman inspect -f '{{.State.Running}}' "$name")" != true ]; then
        podman logs "$name" >&2
        ae_die "the container stopped before it was ready"
    fi
    sleep 0.5
done
curl -fsS "$url/health" >/dev/null || { podman logs "$name" >&2; ae_die "/health not 200"; }
ae_say "/health: $(curl -fsS "$url/health" | head -c 120)"
score="$(curl -fsS -H 'Content-Type: application/json' --data @data/examples/record.json "$url/score")"
ae_say "/score: $(printf '%s' "$score" | head -c 120)"
printf '%s' "$score" | grep -q '"score"' || ae_die "/score gave no score"
v0="$(curl -fsS "$url/model" | grep -o '"model_version":[0-9]*' | head -1)"

code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/csv' \
    --data-binary @data/credit_default_sample.csv "$url/retrain?epochs=3")"
[ "$code" = 401 ] || ae_die "a retrain without the token gave $code, not 401"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H 'Content-Type: text/csv' --data-binary @data/credit_default_sample.csv \
    "$url/retrain?epochs=3&seed=7")"
[ "$code" = 202 ] || ae_die "retrain gave $code, not 202"
for _ in $(seq 1 120); do
    v1="$(curl -fsS "$url/model" | grep -o '"model_version":[0-9]*' | head -1)"
    [ "$v1" != "$v0" ] && break
    sleep 0.5
done
[ "$v1" != "$v0" ] || ae_die "the retrained model was not published ($v0)"
ae_say "retrain published: $v0 -> $v1"
podman exec "$name" test -s /var/lib/aescored/model.aes || ae_die "no model in the volume"

podman stop -t 30 "$name" >/dev/null
rc="$(podman inspect -f '{{.State.ExitCode}}' "$name")"
[ "$rc" = 0 ] || { podman logs "$name" >&2; ae_die "stopped with exit code $rc"; }
podman volume rm -f aescore-smoke-state >/dev/null 2>&1 || true
echo "image.sh: $image built; /health, /score, retrain ($v0 -> $v1), clean stop: ok"
