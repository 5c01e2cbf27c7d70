#!/usr/bin/python3
"""Novelty-detection split for scripts/quality.sh, identical to the peers' protocol.

For every DATADIR/NAME.csv (header row, last column `label`, 1 = anomaly):
the indices of the normal rows (label 0) are shuffled with numpy's default_rng(20261129);
the first 60 % (rounded) of them, back in file order, form NAME.train.csv; the other normal
rows and every anomaly, in file order, form NAME.test.csv. Numeric cells are written as
"%.10g" (label "%d"), so the files match the peers' split byte for byte and figures are
comparable; text and empty cells (records as they come) are copied as they are.

usage: quality_split.py DATADIR OUTDIR [NAME ...]     (default: every *.csv in DATADIR)
prints one line per data set: NAME TRAIN_ROWS TEST_ROWS TEST_ANOMALIES
"""
import os
import sys

import numpy as np

SEED = 20261129
TRAIN_SHARE = 0.6
# Column families the peers drop before splitting (sparse one-hot columns with no signal).
DROP_PREFIX = {"lending_club": "addr_state_"}


def read_csv(path):
    # Text mode: universal newlines, so LF, CRLF and CR line ends all work.
    with open(path, encoding="utf-8-sig") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        sys.exit(f"{path}: no data rows")
    header = lines[0].split(",")
    if header[-1] != "label":
        sys.exit(f"{path}: the last column is {header[-1]!r}, expected 'label'")
    rows = [line.split(",") for line in lines[1:]]
    if any(len(row) != len(header) for row in rows):
        sys.exit(f"{path}: rows do not all have {len(header)} cells")
    return header, rows


def cell(text):
    try:
        return "%.10g" % float(text)
    except ValueError:
        return text


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            cells = [cell(c) for c in row[:-1]] + ["%d" % float(row[-1])]
            f.write(",".join(cells) + "\n")


def split(datadir, name, outdir):
    header, rows = read_csv(os.path.join(datadir, name + ".csv"))
    prefix = DROP_PREFIX.get(name)
    keep = [i for i, h in enumerate(header) if not (prefix and h.startswith(prefix))]
    header = [header[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    label = np.array([float(row[-1]) for row in rows])
    if not np.all((label == 0) | (label == 1)):
        sys.exit(f"{name}: label must be 0 or 1")
    normal = np.flatnonzero(label == 0)
    anomalous = np.flatnonzero(label == 1)
    np.random.default_rng(SEED).shuffle(normal)
    cut = int(round(len(normal) * TRAIN_SHARE))
    train = [rows[i] for i in np.sort(normal[:cut])]
    test = [rows[i] for i in np.sort(np.concatenate([normal[cut:], anomalous]))]
    write_csv(os.path.join(outdir, name + ".train.csv"), header, train)
    write_csv(os.path.join(outdir, name + ".test.csv"), header, test)
    return len(train), len(test), len(anomalous)


def main():
    if len(sys.argv) < 3:
        print("usage: quality_split.py DATADIR OUTDIR [NAME ...]", file=sys.stderr)
        sys.exit(2)
    datadir, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    names = sys.argv[3:] or sorted(f[:-4] for f in os.listdir(datadir) if f.endswith(".csv"))
    if not names:
        sys.exit(f"{datadir}: no .csv files")
    for name in names:
        ntrain, ntest, nanom = split(datadir, name, outdir)
        print(name, ntrain, ntest, nanom)


if __name__ == "__main__":
    main()
