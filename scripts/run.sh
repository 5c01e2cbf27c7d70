#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root, from anywhere:
#   scripts/run.sh
# Installs the build dependencies (apt-get, only what is missing), makes a release build in
# build/, trains an autoencoder on the bundled sample data/credit_default_sample.csv and
# prints its evaluation report. Output goes to out/ (override with AESCORE_OUT=DIR).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="${AESCORE_OUT:-out}"
data=data/credit_default_sample.csv
aescore=build/src/aescore

ae_install "${AE_BUILD_PACKAGES[@]}"
# A new build/ leaves the tests out (they need libcmocka-dev and pytest: scripts/test.sh
# installs those); an existing build/ keeps its own choice.
if [ -f build/meson-private/coredata.dat ]; then
    ae_build build --buildtype=release
else
    ae_build build --buildtype=release -Dtests=false
fi

# Novelty split, the protocol of scripts/quality.sh in miniature: 3 of every 5 normal rows
# train the model; the other normal rows and every default (label 1) test it.
mkdir -p "$out"
ae_say "splitting $data into $out/sample.train.csv and $out/sample.test.csv"
awk -F, -v train="$out/sample.train.csv" -v test="$out/sample.test.csv" '
    NR == 1 { print > train; print > test; next }
    $NF == 0 && n++ % 5 < 3 { print > train; next }
    { print > test }' "$data"

ae_say "training $out/model.aes (drop --quiet in scripts/run.sh to see progress per epoch)"
"$aescore" train --data "$out/sample.train.csv" --out "$out/model.aes" --quiet

ae_say "model $out/model.aes"
"$aescore" inspect "$out/model.aes"

ae_say "evaluation on $out/sample.test.csv (held-out normal rows + all defaults)"
"$aescore" eval --model "$out/model.aes" --data "$out/sample.test.csv"

ae_say "done: score your own CSV with: $aescore score --model $out/model.aes --data FILE.csv"
