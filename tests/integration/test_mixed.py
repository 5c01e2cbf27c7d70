"""Records as a credit service sends them: text fields, missing values, numbers as strings.

A model is trained with the real CLI on a small CSV with a categorical column and an id
column; the real daemon then scores records against it.
"""

import json
import os
import random
import subprocess

import pytest

from daemon_util import AESCORE, Daemon


def write_mixed_csv(path, rows=300, seed=3):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write("customer_id,amount,months_employed,housing,label\n")
        for i in range(rows):
            housing = rnd.choice(["rent"] * 5 + ["own"] * 4 + ["free"])
            amount = rnd.gauss(1000 if housing == "own" else 400, 50)
            f.write("c%04d,%.2f,%d,%s,0\n" % (i, amount, rnd.randint(1, 120), housing))
        # a rare category (fewer rows than --min-category-rows) folds into *other*
        f.write("c9999,500,12,boat,0\n")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    out = str(d / "mixed.aes")
    r = subprocess.run([AESCORE, "train", "--data", write_mixed_csv(str(d / "train.csv")),
                        "--out", out, "--epochs", "10", "--ensemble", "1", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def config(tmp_path, **keys):
    path = tmp_path / "aescored.conf"
    path.write_text("".join("%s = %s\n" % kv for kv in keys.items()))
    return path


def record(**fields):
    base = {"amount": 410.0, "months_employed": 30, "housing": "rent"}
    base.update(fields)
    return {"id": "r1", "features": {k: v for k, v in base.items() if v is not ...}}


def test_model_reports_its_schema(model, tmp_path):
    with Daemon(model) as d:
        status, m = d.get_json("/model")
    assert status == 200
    assert m["features"] == ["amount", "months_employed", "housing"]
    assert m["ignored"] == ["customer_id"]
    housing = m["schema"][2]
    assert housing["kind"] == "categorical"
    assert sorted(housing["categories"]) == ["free", "own", "rent"]  # boat: too rare
    assert housing["other"] is True
    assert housing["fill"] == housing["categories"][0]  # the most frequent
    assert m["schema"][0]["kind"] == "numeric" and m["input"] == 2 + 4


def test_text_fields_are_scored_and_explained_by_field(model, tmp_path):
    with Daemon(model) as d:
        status, r = d.post_json("/score", record())
        status2, odd = d.post_json("/score", record(amount=5000.0))
    assert status == 200 and status2 == 200
    assert "imputed" not in r and "unseen" not in r
    assert odd["score"] > r["score"]
    names = [t["name"] for t in odd["top_features"]]
    assert set(names) <= {"amount", "months_employed", "housing"}  # fields, not columns


def test_unseen_category_maps_to_other_and_is_counted(model, tmp_path):
    with Daemon(model) as d:
        status, r = d.post_json("/score", record(housing="castle"))
        _, boat = d.post_json("/score", record(housing="boat"))  # folded into *other* too
        metrics = d.request("GET", "/metrics")[2]
    assert status == 200
    assert r["unseen"] == ["housing"]
    assert boat["unseen"] == ["housing"] and boat["score"] == r["score"]
    assert b"aescore_unseen_categories_total 2" in metrics


def test_a_category_with_an_escaped_nul_is_another_category(model, tmp_path):
    """cJSON's C strings would cut "own\u0000x" to "own", a known category."""
    with Daemon(model) as d:
        _, own = d.post_json("/score", record(housing="own"))
        status, r = d.post_json("/score", record(housing="own\x00x"))
    assert status == 200
    assert "unseen" not in own
    assert r["unseen"] == ["housing"]


def test_missing_fields_are_refused_by_default(model, tmp_path):
    with Daemon(model) as d:
        status, r = d.post_json("/score", record(months_employed=...))
        status2, r2 = d.post_json("/score", record(months_employed=None))
    for s, body in ((status, r), (status2, r2)):
        assert s == 422
        assert body["error"]["code"] == "schema_mismatch"
        assert body["error"]["missing"] == ["months_employed"]


def test_missing_fields_are_imputed_within_the_configured_share(model, tmp_path):
    with Daemon(model, config=config(tmp_path, max_missing_percent=34)) as d:
        status, r = d.post_json("/score", record(months_employed=None))
        _, m = d.get_json("/model")
        fill = m["schema"][1]["fill"]
        _, explicit = d.post_json("/score", record(months_employed=fill))
        status3, r3 = d.post_json("/score", record(months_employed=..., housing=None))
        metrics = d.request("GET", "/metrics")[2]
    assert status == 200
    assert r["imputed"] == ["months_employed"]
    assert r["score"] == explicit["score"]  # imputed with the fill /model shows
    assert status3 == 422
    assert r3["error"]["missing"] == ["months_employed", "housing"]
    assert b"aescore_imputed_fields_total 1" in metrics


def test_numbers_as_strings_only_when_lenient(model, tmp_path):
    with Daemon(model) as d:
        status, r = d.post_json("/score", record(amount="410.0"))
    assert status == 422
    assert r["error"]["invalid"] == ["amount"]
    assert "lenient_numbers" in r["error"]["message"]
    with Daemon(model, config=config(tmp_path, lenient_numbers="yes")) as d:
        status, r = d.post_json("/score", record(amount="410.0"))
        _, plain = d.post_json("/score", record(amount=410.0))
        status3, r3 = d.post_json("/score", record(amount="4l0"))
    assert status == 200 and r["score"] == plain["score"]
    assert status3 == 422 and r3["error"]["invalid"] == ["amount"]


def test_a_category_must_be_a_string(model, tmp_path):
    with Daemon(model, config=config(tmp_path, lenient_numbers="yes")) as d:
        status, r = d.post_json("/score", record(housing=3))
    assert status == 422 and r["error"]["invalid"] == ["housing"]


def test_values_arrays_take_one_value_per_field(model, tmp_path):
    with Daemon(model) as d:
        status, r = d.post_json("/score", {"values": [410.0, 30, "rent"]})
        _, named = d.post_json("/score", record())
        status2, r2 = d.post_json("/score/batch", {"records": [
            {"values": [410.0, 30, "rent"]}, {"values": [410.0, 30, "castle"]}]})
    assert status == 200 and r["score"] == named["score"]
    assert status2 == 200
    assert "unseen" not in r2["results"][0] and r2["results"][1]["unseen"] == ["housing"]


def test_retrain_takes_text_csv_and_keeps_the_schema(model, tmp_path):
    csv = open(write_mixed_csv(str(tmp_path / "new.csv"), seed=9)).read()
    with Daemon(model) as d:
        status, _, body = d.request("POST", "/retrain", body=csv.encode(),
                                    headers={"Content-Type": "text/csv"})
        assert status == 202, body
        st = d.wait_job()
        assert st["state"] == "succeeded", st
        _, m = d.get_json("/model")
    assert m["model_version"] == 2
    assert m["features"] == ["amount", "months_employed", "housing"]
    assert m["ignored"] == ["customer_id"]


def test_retrain_takes_json_records_with_text_and_nulls(model, tmp_path):
    rnd = random.Random(5)
    recs = []
    for i in range(120):
        housing = rnd.choice(["rent", "own", "free"])
        recs.append({"id": i, "features": {
            "amount": rnd.gauss(1000 if housing == "own" else 400, 50),
            "months_employed": None if i % 10 == 0 else rnd.randint(1, 120),
            "housing": housing}})
    recs.append({"values": [400.0, 12, None], "label": 1})  # labelled: left out of training
    with Daemon(model) as d:
        status, r = d.post_json("/retrain", {"records": recs, "params": {"epochs": 5}})
        assert status == 202, r
        st = d.wait_job()
        assert st["state"] == "succeeded", st
        _, m = d.get_json("/model")
        bad = [{"features": {"amount": [1], "months_employed": 1, "housing": "own"}}] * 120
        status2, r2 = d.post_json("/retrain", {"records": bad})
    assert m["training"]["rows"] == 120
    assert m["features"] == ["amount", "months_employed", "housing"]
    assert m["schema"][2]["kind"] == "categorical"
    assert status2 == 422 and r2["error"]["invalid"] == ["amount"]
    assert r2["error"]["indices"][:3] == [0, 1, 2]


def declined_spelling(body):
    """The same JSON with the keys "features" and "values" spelt with an escape: a body that
    means the same, which the allocation-free reader declines (it takes no escapes), so the
    cJSON reader answers it."""
    out = body.replace(b'"features"', b'"\\u0066eatures"').replace(b'"values"',
                                                                   b'"\\u0076alues"')
    assert out != body
    return out


READER_CASES = [
    record(),                                  # every field, a known category
    record(housing="castle"),                  # unseen: *other*
    record(housing="boat"),                    # folded into *other* at training
    record(housing=""),                        # empty: unseen
    record(housing=None),                      # null: imputed
    record(months_employed=...),               # absent: imputed
    {"id": 12, "values": [5000.0, None, "own"]},
    {"features": {"housing": "free", "amount": -3.25e2, "months_employed": 0}},
]


def test_replies_do_not_depend_on_which_reader_ran(model, tmp_path):
    """Records with text fields, nulls and absent fields take the allocation-free reader;
    each reply must be byte for byte the one the cJSON reader gives the same record, for
    /score and /score/batch, and so must the counters of imputed and unseen fields."""
    replies = {}
    for spelling in ("fast", "cjson"):
        with Daemon(model, config=config(tmp_path, max_missing_percent=34)) as d:
            got = []
            for rec in READER_CASES:
                body = json.dumps(rec).encode()
                if spelling == "cjson":
                    body = declined_spelling(body)
                got.append(d.request("POST", "/score", body,
                                     {"Content-Type": "application/json"})[::2])
            batch = json.dumps({"records": READER_CASES}).encode()
            if spelling == "cjson":
                batch = declined_spelling(batch)
            got.append(d.request("POST", "/score/batch", batch,
                                 {"Content-Type": "application/json"})[::2])
            metrics = d.request("GET", "/metrics")[2].decode()
            got.append([line for line in metrics.splitlines()
                        if line.startswith(("aescore_imputed_fields_total",
                                            "aescore_unseen_categories_total"))])
        replies[spelling] = got
    for i, (fast, slow) in enumerate(zip(replies["fast"], replies["cjson"])):
        assert fast == slow, "case %d differs" % i
    statuses = [r[0] for r in replies["fast"][:-1]]
    assert statuses == [200] * (len(READER_CASES) + 1)
    by_case = [json.loads(r[1]) for r in replies["fast"][:len(READER_CASES)]]
    assert by_case[1]["unseen"] == ["housing"] and by_case[4]["imputed"] == ["housing"]
    assert by_case[5]["imputed"] == ["months_employed"] and by_case[6]["id"] == 12
    # 2 x (case 4, 5, 6) imputed; 2 x (cases 1, 2, 3) unseen: singles, then the batch
    assert replies["fast"][-1] == ["aescore_imputed_fields_total 6",
                                   "aescore_unseen_categories_total 6"]
