"""The status page (GET /) and the offline report (aescore report) in a real browser:
Debian's chromium, headless, driven by playwright-core (tests/browser/page.mjs).

Each test fails on any console error or warning, on any page error, and on any request that
leaves the daemon (or, for the report, any request at all); it compares what is drawn with
the daemon's JSON and with figures computed here, and keeps a 1280x800 screenshot in
$AESCORE_BUILD_DIR/artifacts/.
"""

import csv
import json
import os
import random
import subprocess

import pytest

from daemon_util import AESCORE, BUILD_DIR, Daemon, require_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
ARTIFACTS = os.path.join(BUILD_DIR, "artifacts")
SAMPLE = os.path.join(REPO, "data", "credit_default_sample.csv")
HOUSING = ["rent"] * 5 + ["own"] * 4 + ["free"]
# a field name that is markup, and a value that must never reach the page
ODD_FIELD = "<i>risk</i>"
SECRET_AMOUNT = 98765.4321


@pytest.fixture(scope="module")
def driver():
    """node + playwright-core, installed from tests/browser/package-lock.json when missing."""
    node = require_tool("node")
    require_tool("npm")
    if not os.path.exists("/usr/bin/chromium"):
        raise RuntimeError("chromium is not installed: scripts/test.sh installs it")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True,
                       timeout=300)
    os.makedirs(ARTIFACTS, exist_ok=True)

    def load(url, name, ready=None):
        args = [node, os.path.join(BROWSER_DIR, "page.mjs"), url,
                os.path.join(ARTIFACTS, name)] + ([ready] if ready else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["errors"] == [], out["errors"]
        assert out["foreign"] == [], out["foreign"]
        assert os.path.getsize(os.path.join(ARTIFACTS, name)) > 10000
        return out
    return load


def mixed_rows(n, seed, amount_shift=0.0):
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        h = rnd.choice(HOUSING)
        rows.append({"amount": rnd.gauss(1000 if h == "own" else 400, 50) + amount_shift,
                     "months": rnd.randint(1, 120), ODD_FIELD: rnd.gauss(0, 1), "housing": h})
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_the_status_page_draws_what_the_daemon_measures(tmp_path, driver):
    train = str(tmp_path / "train.csv")
    write_csv(train, mixed_rows(600, 1))
    model = str(tmp_path / "model.aes")
    r = subprocess.run([AESCORE, "train", "--data", train, "--out", model, "--quiet",
                        "--epochs", "8", "--ensemble", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with Daemon(model) as d:
        # real traffic: mostly normal, some shifted, one secret amount, unseen categories
        live = mixed_rows(400, 2) + mixed_rows(100, 3, amount_shift=300)
        live[7]["amount"] = SECRET_AMOUNT
        for i in range(0, 20):
            live[i]["housing"] = "council"
        status, body = d.post_json("/score/batch", {"records": [{"features": x} for x in live]})
        assert status == 200, body
        # a retrain, for the loss curves and the model history
        retrain = str(tmp_path / "retrain.csv")
        write_csv(retrain, mixed_rows(300, 4))
        with open(retrain, "rb") as f:
            status, _, body = d.request("POST", "/retrain?epochs=4&ensemble=2", body=f.read(),
                                        headers={"Content-Type": "text/csv"})
        assert status == 202, body
        job = d.wait_job()
        assert job["state"] in ("succeeded", "held"), job
        if job["state"] == "succeeded":  # a new model: count its traffic too
            status, body = d.post_json("/score/batch",
                                       {"records": [{"features": x} for x in live]})
            assert status == 200
        _, drift = d.get_json("/drift")
        _, models = d.get_json("/models")
        page = driver("http://%s:%d/" % (d.host, d.port), "status-page.png", "body[data-ready]")

    assert "default-src 'none'" in page["csp"] and "'unsafe-inline'" not in page["csp"]
    # the histogram's bars are /drift's score counts, bin for bin
    assert [int(b["data-count"]) for b in page["recentBars"]] == \
        [b["recent"] for b in drift["score"]["bins"]]
    assert [float(b["data-share"]) for b in page["expectedBars"]] == \
        [b["expected"] for b in drift["score"]["bins"]]
    assert page["threshold"]
    # the drift table: /drift's fields in its order (by PSI), the shifted amount first
    assert page["driftRows"] == [f["name"] for f in drift["features"]]
    assert page["driftRows"][0] == "amount"
    amount = page["driftCells"][0]
    assert amount[3]["text"] == drift["features"][0]["band"] and "shift" in amount[2]["cls"]
    housing = page["driftCells"][page["driftRows"].index("housing")]
    assert housing[4]["text"] == "20"  # unseen "council"
    # loss curves: train and validation for each of the two members
    assert sorted((l["class"], l["data-member"]) for l in page["lossLines"]) == \
        sorted((c, m) for c in ("loss-train_loss", "loss-val_loss") for m in ("0", "1"))
    assert page["historyRows"] == len(models["models"]) == 2
    # aggregates only: the markup-named field is text, and no record value is shown
    assert ODD_FIELD in page["text"]
    assert str(SECRET_AMOUNT) not in page["text"] and "98765" not in page["text"]


def mann_whitney_auc(scores, labels):
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    ranked = sorted(scores)
    rank = {}
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j] == ranked[i]:
            j += 1
        rank[ranked[i]] = (i + j + 1) / 2  # 1-based mean rank of the ties
        i = j
    u = sum(rank[s] for s in pos) - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def test_the_report_is_one_page_with_the_evaluation(tmp_path, driver):
    model = str(tmp_path / "sample.aes")
    out = str(tmp_path / "report.html")
    r = subprocess.run([AESCORE, "train", "--data", SAMPLE, "--out", model, "--quiet",
                        "--epochs", "10", "--ensemble", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([AESCORE, "report", "--model", model, "--data", SAMPLE, "--out", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    page = driver("file://" + out, "report.png")
    marks = {}
    for m in page["reportMarks"]:
        marks.setdefault(m["data-mark"], []).append(float(m["data-value"]))

    # the AUC, from `aescore score` and the labels alone
    scored = subprocess.run([AESCORE, "score", "--model", model, "--data", SAMPLE],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    scores = [float(line.split(",")[1]) for line in scored[1:]]
    with open(SAMPLE) as f:
        labels = [int(row["label"]) for row in csv.DictReader(f)]
    assert len(scores) == len(labels) == 3525
    assert marks["roc_auc"][0] == pytest.approx(mann_whitney_auc(scores, labels), abs=1e-4)
    assert marks["roc"][0] == marks["roc_auc"][0]
    ev = json.loads(subprocess.run([AESCORE, "eval", "--model", model, "--data", SAMPLE,
                                    "--json"], capture_output=True, text=True,
                                   check=True).stdout)
    for key in ("pr_auc", "precision", "recall", "f1"):
        assert marks[key][0] == pytest.approx(ev[key], abs=1e-6), key
    # every row in the histograms, each class once; the shares of each class add up to 1
    assert sum(marks["hist-normal"]) == labels.count(0)
    assert sum(marks["hist-anomalous"]) == labels.count(1)
    assert len(marks["share-normal"]) == len(marks["share-anomalous"]) == 23  # the fields
    assert sum(marks["share-normal"]) == pytest.approx(1, abs=1e-4)
    assert sum(marks["share-anomalous"]) == pytest.approx(1, abs=1e-4)
    assert marks["threshold"][0] == pytest.approx(ev["threshold"], rel=1e-6)


def test_report_errors_are_precise(tmp_path):
    r = subprocess.run([AESCORE, "report", "--model", "x.aes", "--data", SAMPLE],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--out are required" in r.stderr
    unlabelled = str(tmp_path / "nolabel.csv")
    with open(SAMPLE) as f, open(unlabelled, "w") as g:
        for line in f:
            g.write(line.rsplit(",", 1)[0] + "\n")
    model = str(tmp_path / "m.aes")
    subprocess.run([AESCORE, "train", "--data", SAMPLE, "--out", model, "--quiet", "--epochs",
                    "2", "--ensemble", "1"], check=True)
    r = subprocess.run([AESCORE, "report", "--model", model, "--data", unlabelled, "--out",
                        str(tmp_path / "r.html")], capture_output=True, text=True)
    assert r.returncode == 1 and "no label column 'label': report needs labelled rows" in r.stderr
    r = subprocess.run([AESCORE, "report", "--model", model, "--data", SAMPLE, "--out",
                        str(tmp_path / "missing-dir" / "r.html")], capture_output=True, text=True)
    assert r.returncode == 1 and "r.html: " in r.stderr
