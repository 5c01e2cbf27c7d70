"""GET /drift and the PSI metrics against the real daemon, checked against a PSI computed
here from the training CSV alone (DESIGN section 3d).

The model trains on four numeric fields and one categorical one. Live traffic then comes
from the training distribution except for one shifted field: that field's PSI passes 0.25
within one window while the others stay under 0.1, and the figures equal the independent
computation: decile edges of the training values (the value at index k*n/10 of the sorted
values, k = 1..9; a value's bin is the number of edges <= it), shares of the training rows
per bin, shares of the recent records, each share floored at 1e-4.
"""

import bisect
import math
import os
import random
import struct
import subprocess
import time

from daemon_util import AESCORE, Daemon

NUMERIC = ["income", "debt", "age", "tenure"]
HOUSING = ["rent"] * 5 + ["own"] * 4 + ["free"]
FLOOR = 1e-4
WINDOW = 1000


def f32(v):
    """v as the daemon holds it: a float32."""
    return struct.unpack("f", struct.pack("f", v))[0]


def row(rnd, shift=0.0, housing=None):
    a = rnd.gauss(0, 1)
    return {"income": 50 + 10 * a + rnd.gauss(0, 3), "debt": 20 + 5 * a + rnd.gauss(0, 2),
            "age": rnd.gauss(40, 8) + shift, "tenure": rnd.uniform(0, 30),
            "housing": housing or rnd.choice(HOUSING)}


def write_training(path, n=2000, seed=1):
    rnd = random.Random(seed)
    rows = [row(rnd) for _ in range(n)]
    with open(path, "w") as f:
        f.write(",".join(NUMERIC + ["housing"]) + "\n")
        for r in rows:
            f.write(",".join(["%.4f" % r[k] for k in NUMERIC] + [r["housing"]]) + "\n")
    # what the daemon read: the printed values as float32
    return [dict({k: f32(float("%.4f" % r[k])) for k in NUMERIC}, housing=r["housing"])
            for r in rows]


def psi(expected, recent):
    total = sum(recent)
    out = 0.0
    for e, c in zip(expected, recent):
        a, e = max(c / total, FLOOR), max(e, FLOOR)
        out += (a - e) * math.log(a / e)
    return out


def numeric_psi(train, live, name):
    values = sorted(r[name] for r in train)
    edges = [values[k * len(values) // 10] for k in range(1, 10)]
    expected = [0] * 10
    for v in values:
        expected[bisect.bisect_right(edges, v)] += 1
    recent = [0] * 10
    for r in live:
        recent[bisect.bisect_right(edges, f32(r[name]))] += 1
    return psi([e / len(values) for e in expected], recent), recent


def categorical_psi(train, live):
    cats = sorted(set(r["housing"] for r in train),
                  key=lambda c: (-sum(r["housing"] == c for r in train), c))
    expected = [sum(r["housing"] == c for r in train) / len(train) for c in cats] + [0]
    recent = [sum(r["housing"] == c for r in live) for c in cats]
    recent.append(len(live) - sum(recent))
    return psi(expected, recent), recent


def by_name(report):
    return {f["name"]: f for f in report["features"]}


def score(d, live):
    for start in range(0, len(live), 250):
        recs = [{"features": r} for r in live[start:start + 250]]
        status, body = d.post_json("/score/batch", {"records": recs})
        assert status == 200, body


def trained(tmp_path, epochs):
    """The training rows, a model trained on them and a config of a WINDOW-record window."""
    csv = str(tmp_path / "train.csv")
    train = write_training(csv)
    model = str(tmp_path / "model.aes")
    r = subprocess.run([AESCORE, "train", "--data", csv, "--out", model, "--quiet",
                        "--epochs", str(epochs), "--ensemble", "1"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    conf = tmp_path / "drift.conf"
    conf.write_text("drift_window = %d\n" % WINDOW)
    return train, model, str(conf)


def test_a_shifted_field_stands_out_and_matches_an_independent_psi(tmp_path):
    train, model, conf = trained(tmp_path, epochs=5)
    rnd = random.Random(7)
    with Daemon(model, config=conf) as d:
        status, empty = d.get_json("/drift")
        assert status == 200
        assert empty["window"] == {"records": 0, "capacity": WINDOW, "since": None}
        assert all(f["psi"] is None for f in empty["features"])
        t0 = time.time()
        live = [row(rnd, shift=12.0) for _ in range(WINDOW)]  # age moves by 1.5 sd
        score(d, live)
        _, rep = d.get_json("/drift")
        assert rep["window"]["records"] == WINDOW
        assert t0 - 1 <= rep["window"]["since"] <= time.time()
        fields = by_name(rep)
        assert [f["name"] for f in rep["features"]][0] == "age"  # sorted by PSI
        assert fields["age"]["psi"] > 0.25 and fields["age"]["band"] == "shift"
        for name in ("income", "debt", "tenure", "housing"):
            assert fields[name]["psi"] < 0.1, (name, fields[name]["psi"])
            assert fields[name]["band"] == "stable"
        for name in NUMERIC:
            want, counts = numeric_psi(train, live, name)
            assert abs(fields[name]["psi"] - want) < 2e-3, (name, fields[name]["psi"], want)
            got = [b["recent"] for b in fields[name]["bins"]]
            assert sum(got) == WINDOW
            assert sum(abs(a - b) for a, b in zip(got, counts)) <= 2, (name, got, counts)
        want, counts = categorical_psi(train, live)
        assert [b["recent"] for b in fields["housing"]["bins"]] == counts
        assert abs(fields["housing"]["psi"] - want) < 1e-6
        assert [b["category"] for b in fields["housing"]["bins"]] == ["rent", "own", "free",
                                                                      "*unseen*"]
        metrics = d.request("GET", "/metrics")[2].decode()
        line = [l for l in metrics.splitlines() if l.startswith('aescore_feature_psi{feature="age"}')]
        assert len(line) == 1 and abs(float(line[0].split()[-1]) - fields["age"]["psi"]) < 1e-9
        assert "aescore_score_psi " in metrics
        assert rep["score_psi"] == rep["score"]["psi"] > 0
        assert sum(b["recent"] for b in rep["score"]["bins"]) == WINDOW

        # a window later the shift is gone from age and in housing (re-coded categories)
        live = [row(rnd, housing="free" if i % 3 else None) for i in range(WINDOW)]
        score(d, live)
        fields = by_name(d.get_json("/drift")[1])
        assert fields["age"]["psi"] < 0.1, fields["age"]["psi"]
        want, counts = categorical_psi(train, live)
        assert fields["housing"]["psi"] > 0.25
        assert abs(fields["housing"]["psi"] - want) < 1e-6
        # unseen categories land in their own bin, where training had none
        score(d, [row(rnd, housing="council") for _ in range(WINDOW // 2)])
        fields = by_name(d.get_json("/drift")[1])
        assert fields["housing"]["bins"][-1]["recent"] == WINDOW // 2
        assert fields["housing"]["bins"][-1]["expected"] == 0


def float32_below(v):
    """The float32 just below v (a float32), as a double that prints it exactly."""
    bits = struct.unpack("<i", struct.pack("<f", v))[0]
    return struct.unpack("<f", struct.pack("<i", bits - 1 if v > 0 else bits + 1))[0]


def test_a_value_on_an_edge_counts_in_the_bin_above_it(tmp_path):
    """Bins count the edges <= x: each numeric field's nine edges sent as values, and the
    float just below each, land in exactly the bins an independent bisect gives."""
    _, model, conf = trained(tmp_path, epochs=2)
    with Daemon(model, config=conf) as d:
        fields = by_name(d.get_json("/drift")[1])
        edges = {n: [f32(b["edge"]) for b in fields[n]["bins"][1:]] for n in NUMERIC}
        assert all(len(e) == 9 and e == sorted(e) for e in edges.values())
        live = []
        for k in range(9):
            live.append(dict({n: edges[n][k] for n in NUMERIC}, housing="rent"))
            live.append(dict({n: float32_below(edges[n][k]) for n in NUMERIC}, housing="own"))
        score(d, live)
        fields = by_name(d.get_json("/drift")[1])
        for n in NUMERIC:
            want = [0] * 10
            for rec in live:
                want[bisect.bisect_right(edges[n], f32(rec[n]))] += 1
            assert [b["recent"] for b in fields[n]["bins"]] == want, (n, want)
            assert want[1:] == [2] * 8 + [1] or len(set(edges[n])) < 9
