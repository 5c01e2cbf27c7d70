#!/usr/bin/python3
"""Benchmark inputs, all from one fixed seed (stdlib only).

usage: gen.py OUTDIR

Writes into OUTDIR:
  seed.csv         8,000 normal rows x 50 features f0..f49: 8 latent factors mixed into 50
                   columns plus noise; the same generator and seed as scripts/bench-core.sh,
                   so both benchmarks train the same model
  retrain.csv      the same rows again with a "label" column of 0 (POST /retrain body)
  small.csv        the first 200 rows (the 100 quick retrains of the RSS probe)
  body_single.json one record {"features": {"f0": .., ..., "f49": ..}} (a held-out row)
  body_batch.json  {"records": [1,000 such records]}
"""
import json
import os
import random
import sys


def rows(n, rnd, mix):
    for _ in range(n):
        z = [rnd.gauss(0, 1) for _ in range(8)]
        yield ["%.5f" % (sum(a * b for a, b in zip(row, z)) + rnd.gauss(0, 0.1))
               for row in mix]


def main():
    out = sys.argv[1]
    rnd = random.Random(20261129)
    mix = [[rnd.gauss(0, 1) for _ in range(8)] for _ in range(50)]
    names = ["f%d" % i for i in range(50)]
    train = list(rows(8000, rnd, mix))
    with open(os.path.join(out, "seed.csv"), "w") as f:
        f.write(",".join(names) + "\n")
        for r in train:
            f.write(",".join(r) + "\n")
    with open(os.path.join(out, "retrain.csv"), "w") as f:
        f.write(",".join(names) + ",label\n")
        for r in train:
            f.write(",".join(r) + ",0\n")
    with open(os.path.join(out, "small.csv"), "w") as f:
        f.write(",".join(names) + ",label\n")
        for r in train[:200]:
            f.write(",".join(r) + ",0\n")
    held = list(rows(1000, rnd, mix))

    def record(r):
        # six decimals, like a client printing floats; ids are what clients echo back
        return {"features": {n: round(float(v), 6) for n, v in zip(names, r)}}

    sep = (",", ":")
    with open(os.path.join(out, "body_single.json"), "w") as f:
        f.write(json.dumps(record(held[0]), separators=sep))
    with open(os.path.join(out, "body_batch.json"), "w") as f:
        f.write(json.dumps({"records": [record(r) for r in held]}, separators=sep))


if __name__ == "__main__":
    main()
