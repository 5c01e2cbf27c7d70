#!/usr/bin/env bash
# Detection-quality benchmark (novelty protocol of the peers' bench/quality/split.py).
#
#   scripts/quality.sh DATA_DIR [OUT_DIR] [-- TRAIN-OPTION...]
#
# For every DATA_DIR/NAME.csv (header row, numeric cells, last column `label`, 1 = anomaly):
# scripts/quality_split.py shuffles the normal rows with seed 20261129, 60 % of them train;
# the other 40 % plus every anomaly test. Then `aescore train` with the default options (plus
# TRAIN-OPTION... if given, e.g. `-- --hidden 16 --epochs 100`), `aescore eval --json` on the
# test file, and a table: ROC AUC, PR AUC, F1 at the model's threshold, training seconds,
# and the mean over the data sets. OUT_DIR (default out/quality) receives the split files,
# the models, each eval JSON and results.json / results.md.
# Set AESCORE_PEERS=FILE (a peer_figures.json) to print the peers' ROC AUC beside ours.
set -euo pipefail

usage() {
    echo "usage: scripts/quality.sh DATA_DIR [OUT_DIR] [-- TRAIN-OPTION...]" >&2
    exit 2
}

[ "$#" -ge 1 ] || usage
case "$1" in -h | --help | --) usage ;; esac
data_dir="$1"
shift
out_dir=out/quality
if [ "$#" -ge 1 ] && [ "$1" != "--" ]; then
    out_dir="$1"
    shift
fi
extra=()
if [ "$#" -ge 1 ]; then
    [ "$1" = "--" ] || usage
    shift
    extra=("$@")
fi
[ -d "$data_dir" ] || { echo "error: $data_dir: not a directory" >&2; exit 2; }
# Resolve the caller's relative paths before lib.sh moves to the repository root.
data_dir="$(cd "$data_dir" && pwd)"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
peers="${AESCORE_PEERS:-}"
if [ -n "$peers" ]; then
    peers="$(cd "$(dirname "$peers")" && pwd)/$(basename "$peers")"
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian's python3 with python3-numpy (the split must use numpy's generator to match peers).
ae_install python3 python3-numpy
py=/usr/bin/python3

aescore=build/src/aescore
if [ -f build/meson-private/coredata.dat ]; then
    meson compile -C build >/dev/null || ae_die "build/ does not compile"
else
    ae_install "${AE_BUILD_PACKAGES[@]}"
    ae_build build --buildtype=release -Dtests=false >/dev/null
fi
[ -x "$aescore" ] || ae_die "$aescore was not built"
buildtype="$(meson introspect build --buildoptions |
    "$py" -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])')"
[ "$buildtype" = release ] || ae_say "warning: build/ is a '$buildtype' build: training times are not representative"

ae_say "splitting $data_dir into $out_dir/split"
mkdir -p "$out_dir/split"
"$py" scripts/quality_split.py "$data_dir" "$out_dir/split" >"$out_dir/split/sets.txt"

ae_say "train options: defaults${extra[*]:+ + ${extra[*]}}"
: >"$out_dir/times.txt"
while read -r name ntrain ntest nanom; do
    ae_say "$name: training on $ntrain normal rows, testing on $ntest rows ($nanom anomalies)"
    t0="$(date +%s.%N)"
    "$aescore" train --data "$out_dir/split/$name.train.csv" --out "$out_dir/$name.aes" \
        --quiet "${extra[@]}" >"$out_dir/$name.train.log"
    t1="$(date +%s.%N)"
    "$aescore" eval --model "$out_dir/$name.aes" --data "$out_dir/split/$name.test.csv" \
        --json >"$out_dir/$name.eval.json"
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    echo "$name $secs $ntrain $ntest $nanom" >>"$out_dir/times.txt"
done <"$out_dir/split/sets.txt"

"$py" - "$out_dir" "$peers" "${extra[*]}" <<'EOF'
import json, os, sys

out_dir, peers_path, extra = sys.argv[1], sys.argv[2], sys.argv[3]
peers = {}
if peers_path:
    with open(peers_path) as f:
        peers = json.load(f)
peer_cols = [("iforest", "IF"), ("torch_ae", "careful AE"), ("seed_ae", "seed AE")]
peer_cols = [(k, t) for k, t in peer_cols if any(k in v for v in peers.values())]

rows = []
with open(os.path.join(out_dir, "times.txt")) as f:
    for line in f:
        name, secs, ntrain, ntest, nanom = line.split()
        with open(os.path.join(out_dir, name + ".eval.json")) as g:
            ev = json.load(g)
        rows.append({"data_set": name, "roc_auc": ev["roc_auc"], "pr_auc": ev["pr_auc"],
                     "f1": ev["f1"], "train_seconds": float(secs), "train_rows": int(ntrain),
                     "test_rows": int(ntest), "test_anomalies": int(nanom)})

def mean(key, items):
    return sum(r[key] for r in items) / len(items)

head = ["data set", "ROC AUC", "PR AUC", "F1", "train s"]
head += [f"{t} ROC AUC" for _, t in peer_cols]
table = []
for r in rows:
    cells = [r["data_set"], "%.3f" % r["roc_auc"], "%.3f" % r["pr_auc"], "%.3f" % r["f1"],
             "%.2f" % r["train_seconds"]]
    for k, _ in peer_cols:
        p = peers.get(r["data_set"], {}).get(k)
        cells.append("%.3f" % p["roc_auc"] if p else "-")
    table.append(cells)
cells = ["mean", "%.3f" % mean("roc_auc", rows), "%.3f" % mean("pr_auc", rows),
         "%.3f" % mean("f1", rows), "%.2f" % mean("train_seconds", rows)]
for k, _ in peer_cols:
    vals = [peers[r["data_set"]][k]["roc_auc"] for r in rows if k in peers.get(r["data_set"], {})]
    cells.append("%.3f" % (sum(vals) / len(vals)) if len(vals) == len(rows) else "-")
table.append(cells)

md = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
md += ["| " + " | ".join(c) + " |" for c in table]
md[-1] = "| " + " | ".join("**%s**" % c for c in table[-1]) + " |"
with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write("\n".join(md) + "\n")
with open(os.path.join(out_dir, "results.json"), "w") as f:
    json.dump({"train_options": extra, "data_sets": rows}, f, indent=1)
    f.write("\n")

width = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(head)]
fmt = lambda cs: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, width)))
print("train options: defaults" + (" + " + extra if extra else ""))
print(fmt(head))
print(fmt(["-" * w for w in width]))
for c in table[:-1]:
    print(fmt(c))
print(fmt(["-" * w for w in width]))
print(fmt(table[-1]))
EOF
ae_say "written: $out_dir/results.md, $out_dir/results.json"
