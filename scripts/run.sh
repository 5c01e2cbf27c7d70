#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root, from anywhere:
#   scripts/run.sh
# Installs the build dependencies (apt-get, only what is missing), makes a release build in
# build/ and starts the scoring daemon aescored in the foreground on 127.0.0.1:8080. The
# first time, there is no model yet: the daemon trains one from the bundled real sample
# data/credit_default_sample.csv (its normal rows) and saves it as out/model.aes; later
# starts serve that file. Stop it with Ctrl-C. The README shows a curl call for every
# endpoint. Environment: AESCORE_OUT=DIR (state, default out/), AESCORE_LISTEN=HOST:PORT.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="${AESCORE_OUT:-out}"
listen="${AESCORE_LISTEN:-127.0.0.1:8080}"

ae_install "${AE_BUILD_PACKAGES[@]}"
# A new build/ leaves the tests out (they need libcmocka-dev and pytest: scripts/test.sh
# installs those); an existing build/ keeps its own choice.
if [ -f build/meson-private/coredata.dat ]; then
    ae_build build --buildtype=release
else
    ae_build build --buildtype=release -Dtests=false
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
cat >"$out/aescored.conf" <<EOF
# Written by scripts/run.sh; every key is documented in config/aescored.conf.
listen = $listen
model = $out/model.aes
bootstrap_data = $AE_ROOT/data/credit_default_sample.csv
EOF

if [ ! -f "$out/model.aes" ]; then
    ae_say "no model yet: aescored trains one from data/credit_default_sample.csv first"
fi
ae_say "starting aescored on $listen (Ctrl-C stops it); config $out/aescored.conf"
exec build/src/aescored --config "$out/aescored.conf"
