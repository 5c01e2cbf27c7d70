#!/usr/bin/python3
"""Folds one-hot columns back into one text column each: the form credit records come in.

usage: fold_onehot.py IN.csv OUT.csv SPEC...
  PREFIX_        the columns PREFIX_a, PREFIX_b, ... become one column PREFIX holding a, b, ...
                 (exactly one of them must be 1 in every row)
  COL=NAME:A:B   the 0/1 column COL becomes NAME holding A where COL is 1, B where it is 0
Every other column is copied as it is. Used to make data/credit_default_sample.csv from the
one-hot sample, and by scripts/quality.sh users to compare text and pre-encoded columns.
"""
import csv
import sys


def main():
    src, dst, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    groups = {s[:-1]: [c for c in header if c.startswith(s)] for s in specs if s.endswith("_")}
    binaries = {}
    for s in specs:
        if "=" in s:
            col, rest = s.split("=", 1)
            name, yes, no = rest.split(":")
            binaries[col] = (name, yes, no)
    folded = {c for cols in groups.values() for c in cols}
    out_header, plan = [], []
    for c in header:
        if c in binaries:
            out_header.append(binaries[c][0])
            plan.append(("binary", c))
        elif c in folded:
            name = next(g for g, cols in groups.items() if c in cols)
            if name not in out_header:
                out_header.append(name)
                plan.append(("group", name))
        else:
            out_header.append(c)
            plan.append(("copy", c))
    with open(dst, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(out_header)
        for line, row in enumerate(rows[1:], start=2):
            d = dict(zip(header, row))
            out = []
            for kind, c in plan:
                if kind == "copy":
                    out.append(d[c])
                elif kind == "binary":
                    name, yes, no = binaries[c]
                    out.append(yes if float(d[c]) == 1 else no)
                else:
                    hot = [k[len(c) + 1:] for k in groups[c] if float(d[k]) == 1]
                    if len(hot) != 1:
                        sys.exit("%s:%d: %d of the %s_* columns are 1" % (src, line, len(hot), c))
                    out.append(hot[0])
            w.writerow(out)


if __name__ == "__main__":
    main()
