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
# Beside the defaults the same sets are trained with AESCORE_COMPARE (default
# "--reference rows": the defaults plus the neighbour term of the score; set it empty to
# skip), and both are printed ("alt" columns). "us/rec" is the scoring cost per record: model_score_batch
# over batches of 1000 on one core (tests/bench/bench_score, when the build has it).
# Set AESCORE_PEERS=FILE (a peer_figures.json) to print the peers' ROC AUC beside ours.
# Set AESCORE_BUILD_DIR to use another build directory than build/ (e.g. a release one).
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

build="${AESCORE_BUILD_DIR:-build}"
aescore="$build/src/aescore"
bench="$build/tests/bench/bench_score"
if [ -f "$build/meson-private/coredata.dat" ]; then
    meson compile -C "$build" >/dev/null || ae_die "$build/ does not compile"
else
    ae_install "${AE_BUILD_PACKAGES[@]}"
    ae_build "$build" --buildtype=release -Dtests=false >/dev/null
fi
[ -x "$aescore" ] || ae_die "$aescore was not built"
buildtype="$(meson introspect "$build" --buildoptions |
    "$py" -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])')"
[ "$buildtype" = release ] || ae_say "warning: $build/ is a '$buildtype' build: training times are not representative"

ae_say "splitting $data_dir into $out_dir/split"
mkdir -p "$out_dir/split"
"$py" scripts/quality_split.py "$data_dir" "$out_dir/split" >"$out_dir/split/sets.txt"

compare="${AESCORE_COMPARE---reference rows}"
# run_variant NAME TRAIN-OPTION...: trains and evaluates every set into $out_dir/NAME.
run_variant() {
    local variant="$1" dir="$out_dir/$1"
    shift
    mkdir -p "$dir"
    : >"$dir/times.txt"
    ae_say "$variant: train options: defaults${*:+ + $*}"
    while read -r name ntrain ntest nanom; do
        ae_say "$variant $name: training on $ntrain normal rows, testing on $ntest rows ($nanom anomalies)"
        t0="$(date +%s.%N)"
        "$aescore" train --data "$out_dir/split/$name.train.csv" --out "$dir/$name.aes" \
            --quiet "$@" >"$dir/$name.train.log"
        t1="$(date +%s.%N)"
        "$aescore" eval --model "$dir/$name.aes" --data "$out_dir/split/$name.test.csv" \
            --json >"$dir/$name.eval.json"
        secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
        us=-
        if [ -x "$bench" ]; then
            rate="$("$bench" "$dir/$name.aes" 1 | awk '$1 == "batch" { print $2 }')"
            us="$(awk -v r="$rate" 'BEGIN { printf "%.2f", 1e6 / r }')"
        fi
        echo "$name $secs $ntrain $ntest $nanom $us" >>"$dir/times.txt"
    done <"$out_dir/split/sets.txt"
}
run_variant default "${extra[@]}"
if [ -n "$compare" ]; then
    # shellcheck disable=SC2086 # the comparison is a list of options
    run_variant alt $compare "${extra[@]}"
fi

"$py" - "$out_dir" "$peers" "${extra[*]}" "$compare" <<'EOF'
import json, os, sys

out_dir, peers_path, extra, compare = sys.argv[1:5]
peers = {}
if peers_path:
    with open(peers_path) as f:
        peers = json.load(f)
peer_cols = [("iforest", "IF"), ("torch_ae", "careful AE"), ("seed_ae", "seed AE")]
peer_cols = [(k, t) for k, t in peer_cols if any(k in v for v in peers.values())]

def load(variant):
    rows = []
    with open(os.path.join(out_dir, variant, "times.txt")) as f:
        for line in f:
            name, secs, ntrain, ntest, nanom, us = line.split()
            with open(os.path.join(out_dir, variant, name + ".eval.json")) as g:
                ev = json.load(g)
            rows.append({"data_set": name, "roc_auc": ev["roc_auc"], "pr_auc": ev["pr_auc"],
                         "f1": ev["f1"], "train_seconds": float(secs),
                         "us_per_record": None if us == "-" else float(us),
                         "train_rows": int(ntrain), "test_rows": int(ntest),
                         "test_anomalies": int(nanom)})
    return rows

rows = load("default")
alt = {r["data_set"]: r for r in load("alt")} if compare else {}

def mean(key, items):
    vals = [r[key] for r in items]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)

def num(v, f="%.3f"):
    return "-" if v is None else f % v

head = ["data set", "ROC AUC", "PR AUC", "F1", "train s", "us/rec"]
if alt:
    head += ["alt ROC AUC", "alt PR AUC", "alt train s", "alt us/rec"]
head += [f"{t} ROC AUC" for _, t in peer_cols]
table = []
for r in rows + [None]:
    items = rows if r is None else [r]
    alt_items = [alt[x["data_set"]] for x in items if x["data_set"] in alt]
    cells = ["mean" if r is None else r["data_set"], num(mean("roc_auc", items)),
             num(mean("pr_auc", items)), num(mean("f1", items)),
             num(mean("train_seconds", items), "%.2f"), num(mean("us_per_record", items), "%.2f")]
    if alt:
        ok = len(alt_items) == len(items)
        cells += [num(mean("roc_auc", alt_items) if ok else None),
                  num(mean("pr_auc", alt_items) if ok else None),
                  num(mean("train_seconds", alt_items) if ok else None, "%.2f"),
                  num(mean("us_per_record", alt_items) if ok else None, "%.2f")]
    for k, _ in peer_cols:
        vals = [peers[x["data_set"]][k]["roc_auc"] for x in items
                if k in peers.get(x["data_set"], {})]
        cells.append("%.3f" % (sum(vals) / len(vals)) if len(vals) == len(items) else "-")
    table.append(cells)

md = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
md += ["| " + " | ".join(c) + " |" for c in table]
md[-1] = "| " + " | ".join("**%s**" % c for c in table[-1]) + " |"
with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write("\n".join(md) + "\n")
with open(os.path.join(out_dir, "results.json"), "w") as f:
    json.dump({"train_options": extra, "data_sets": rows, "compare_options": compare,
               "compare": list(alt.values())}, f, indent=1)
    f.write("\n")

width = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(head)]
fmt = lambda cs: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, width)))
print("train options: defaults" + (" + " + extra if extra else "") +
      ("; alt: defaults + " + compare + (" + " + extra if extra else "") if alt else ""))
print(fmt(head))
print(fmt(["-" * w for w in width]))
for c in table[:-1]:
    print(fmt(c))
print(fmt(["-" * w for w in width]))
print(fmt(table[-1]))
EOF
ae_say "written: $out_dir/results.md, $out_dir/results.json"
