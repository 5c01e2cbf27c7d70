"""The model lifecycle against the real daemon (DESIGN section 3b): the schema guard, the
promotion gate on recent records, manual promotion, the model history, rollback to a named
model, reload of the served file, and kill -9 during promotion and rollback.

The served model takes amount, months_employed and housing (rent/own/free); customer_id is
an id column it ignores. Each story retrains it over HTTP with an extract that breaks one
thing, as a risk team's fresh extract would.
"""

import os
import random
import signal
import subprocess
import time

import pytest

from daemon_util import AESCORE, Daemon
from test_faults import assert_history_loads

HOUSING = ["rent"] * 5 + ["own"] * 4 + ["free"]


def mixed_csv(rows=300, seed=3, housing=None):
    """The served model's kind of extract; housing(i, value) may rewrite each category."""
    rnd = random.Random(seed)
    lines = ["customer_id,amount,months_employed,housing"]
    for i in range(rows):
        h = rnd.choice(HOUSING)
        amount = rnd.gauss(1000 if h == "own" else 400, 50)
        if housing is not None:
            h = housing(i, h)
        lines.append("c%04d,%.2f,%d,%s" % (i, amount, rnd.randint(1, 120), h))
    return "\n".join(lines) + "\n"


def records(n, seed=5):
    """n records as live traffic sends them, from the training distribution."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        h = rnd.choice(HOUSING)
        out.append({"id": i, "features": {"amount": rnd.gauss(1000 if h == "own" else 400, 50),
                                          "months_employed": rnd.randint(1, 120),
                                          "housing": h}})
    return out


@pytest.fixture()
def store(tmp_path):
    """A fresh state directory holding a trained model.aes."""
    csv = tmp_path / "train.csv"
    csv.write_text(mixed_csv())
    model = tmp_path / "model.aes"
    r = subprocess.run([AESCORE, "train", "--data", str(csv), "--out", str(model), "--epochs",
                        "20", "--ensemble", "1", "--seed", "1", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return model


def daemon(model, **keys):
    keys.setdefault("log_level", "info")
    path = str(model) + ".conf"
    with open(path, "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in keys.items()))
    return Daemon(str(model), config=path)


def retrain_csv(d, text, query=""):
    status, _, body = d.request("POST", "/retrain" + query, body=text.encode(),
                                headers={"Content-Type": "text/csv"})
    assert status == 202, body
    return d.wait_job()


def score_traffic(d, n=300):
    status, r = d.post_json("/score/batch", {"records": records(n)})
    assert status == 200, r
    return r


def models(d):
    status, r = d.get_json("/models")
    assert status == 200, r
    return r


def served_id(d):
    return d.get_json("/health")[1]["model_id"]


def test_a_field_the_new_extract_would_drop_fails_the_job_unless_allowed(store):
    # every row has its own housing value: the learner takes it for an id and leaves it out
    unique = mixed_csv(seed=9, housing=lambda i, h: "%s-%d" % (h, i))
    with daemon(store) as d:
        before = served_id(d)
        st = retrain_csv(d, unique)
        assert st["state"] == "failed", st
        assert st["error"]["code"] == "schema_change", st
        assert "1 dropped" in st["error"]["message"]
        assert st["gates"]["schema"]["pass"] is False
        assert st["gates"]["schema"]["dropped"] == ["housing"]
        assert served_id(d) == before
        # every client's record still scores
        assert d.post_json("/score", records(1)[0])[0] == 200
        # asked for, the change is accepted
        st = retrain_csv(d, unique, "?allow_schema_change=true")
        assert st["state"] == "succeeded", st
        assert st["gates"]["schema"]["dropped"] == ["housing"]
        assert served_id(d) == st["candidate"] != before
        # a category column that arrives as numbers would change kind
        coded = mixed_csv(seed=10, housing=lambda i, h: str(HOUSING.index(h) + 1))
        st = retrain_csv(d, coded)
        assert st["state"] == "failed" and st["error"]["code"] == "schema_change", st
        assert st["gates"]["schema"]["retyped"] == [], st  # served now: no housing at all
        assert st["gates"]["schema"]["added"] == ["housing"], st
        status, r = d.post_json("/retrain?allow_schema_change=maybe", b"{}")
        assert status == 400 and r["error"]["param"] == "allow_schema_change", r


def test_recoded_categories_are_held_under_auto_and_promotable_by_hand(store):
    recoded = mixed_csv(seed=4, housing=lambda i, h: h.upper())
    with daemon(store) as d:
        before = served_id(d)
        score_traffic(d)
        st = retrain_csv(d, recoded)
        assert st["state"] == "held", st
        gate = st["gates"]["recent_records"]
        assert gate["pass"] is False and gate["records"] == 300
        assert gate["served_unseen_rate"] == 0 and gate["candidate_unseen_rate"] == 1
        cats = st["gates"]["schema"]["categories"]["housing"]
        assert sorted(cats["added"]) == ["FREE", "OWN", "RENT"]
        assert sorted(cats["vanished"]) == ["free", "own", "rent"]
        assert "misses a category in 100.0%" in st["reason"]
        assert served_id(d) == before  # held: not served
        listed = models(d)
        assert listed["serving"] == before
        states = {m["model_id"]: m["state"] for m in listed["models"]}
        assert states == {before: "serving", st["candidate"]: "candidate"}
        assert listed["models"][0]["model_id"] == st["candidate"]  # newest first
        assert listed["models"][0]["source"] == "job:%d" % st["job_id"]
        assert listed["models"][0]["gates"]["recent_records"]["pass"] is False
        # a person decides: promote it by hand
        status, r = d.post_json("/model/promote", b"")
        assert status == 200, r
        assert r["model_id"] == st["candidate"] == served_id(d)
        status, r = d.post_json("/model/promote", b"")
        assert status == 409 and r["error"]["code"] == "no_candidate", r
        metrics = d.request("GET", "/metrics")[2].decode()
        assert 'aescore_model_holds_total{reason="gate"} 1\n' in metrics
        assert "aescore_model_promotions_total 1\n" in metrics
        assert "held candidate %s: on 300 recent records" % st["candidate"] in d.stderr_text()


def test_a_fresh_extract_of_the_same_population_is_promoted(store):
    with daemon(store) as d:
        before = served_id(d)
        score_traffic(d)
        st = retrain_csv(d, mixed_csv(seed=11))
        assert st["state"] == "succeeded", st
        gate = st["gates"]["recent_records"]
        assert gate["pass"] is True and gate["records"] == 300
        assert abs(gate["candidate_anomaly_rate"] - gate["served_anomaly_rate"]) <= 0.05
        assert served_id(d) == st["candidate"] != before


def test_manual_promotion_holds_every_candidate(store):
    with daemon(store, promotion="manual") as d:
        before = served_id(d)
        st = retrain_csv(d, mixed_csv(seed=12))
        assert st["state"] == "held", st
        assert st["reason"].startswith("promotion = manual")
        assert served_id(d) == before
        status, r = d.post_json("/model/promote", {"model_id": "0123456789abcdef"})
        assert status == 404 and r["error"]["code"] == "unknown_model", r
        status, r = d.post_json("/model/promote", {"model": st["candidate"]})
        assert status == 400 and r["error"]["code"] == "invalid_request", r
        status, r = d.post_json("/model/promote", {"model_id": st["candidate"]})
        assert status == 200 and r["model_id"] == st["candidate"], r
        states = {m["model_id"]: m["state"] for m in models(d)["models"]}
        assert states == {before: "archived", st["candidate"]: "serving"}
        metrics = d.request("GET", "/metrics")[2].decode()
        assert 'aescore_model_holds_total{reason="manual"} 1\n' in metrics


def test_rollback_to_a_named_model_and_the_history_bound(store):
    with daemon(store, keep_models=3) as d:
        ids = [served_id(d)]
        for seed in (21, 22, 23):
            st = retrain_csv(d, mixed_csv(seed=seed))
            assert st["state"] == "succeeded", st
            ids.append(st["candidate"])
        listed = [m["model_id"] for m in models(d)["models"]]
        assert listed == ids[::-1][:3]  # keep_models = 3: the oldest went
        assert not os.path.exists("%s.history/%s.aes" % (store, ids[0]))
        # default: the one served before
        status, r = d.post_json("/model/rollback", b"")
        assert status == 200 and r["model_id"] == ids[2], r
        # by name
        status, r = d.post_json("/model/rollback", {"model_id": ids[3]})
        assert status == 200 and r["model_id"] == ids[3], r
        status, r = d.post_json("/model/rollback", {"model_id": ids[0]})
        assert status == 404 and r["error"]["code"] == "unknown_model", r
        assert "aescore_model_rollbacks_total 2\n" in d.request("GET", "/metrics")[2].decode()
    assert_history_loads(store)
    # the history survives a restart
    with daemon(store) as again:
        assert [m["model_id"] for m in models(again)["models"]] == listed
        assert served_id(again) == ids[3]


def test_reloading_the_served_file_changes_nothing(store):
    with daemon(store) as d:
        first = served_id(d)
        st = retrain_csv(d, mixed_csv(seed=31))
        assert st["state"] == "succeeded", st
        _, h = d.get_json("/health")
        for _ in range(2):
            status, r = d.post_json("/model/reload", b"")
            assert status == 200 and r["model_version"] == h["model_version"], r
        # the previous model is still the one before: a rollback brings it back
        status, r = d.post_json("/model/rollback", b"")
        assert status == 200 and r["model_id"] == first, r
        status, r = d.post_json("/model/rollback", b"")
        assert status == 200 and r["model_id"] == st["candidate"], r
    assert_history_loads(store)


def test_kill_9_during_promotion_and_rollback_loses_no_model(store):
    """Daemons SIGKILLed at random moments while they promote and roll back: afterwards the
    model file and every model the history names load."""
    rnd = random.Random(7)
    with daemon(store, promotion="manual") as d:
        for seed in (41, 42):
            st = retrain_csv(d, mixed_csv(seed=seed))
            assert st["state"] == "held", st
    for i in range(12):
        d = daemon(store, promotion="manual").start()
        try:
            ids = [m["model_id"] for m in models(d)["models"]]
            target = ids[i % len(ids)]
            path = "/model/promote" if i % 2 else "/model/rollback"
            conn = d.connection()
            conn.request("POST", path, body=('{"model_id":"%s"}' % target).encode(),
                         headers={"Content-Type": "application/json"})
            time.sleep(rnd.uniform(0, 0.004))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(30)
            conn.close()
        finally:
            d.kill()
        r = subprocess.run([AESCORE, "inspect", str(store)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, "round %d: %s" % (i, r.stderr)
        assert_history_loads(store)
    with daemon(store) as again:
        assert len(models(again)["models"]) == 3


def test_a_category_column_that_arrives_as_numbers_is_a_retyped_field(store):
    coded = mixed_csv(seed=10, housing=lambda i, h: str(HOUSING.index(h) + 1))
    with daemon(store) as d:
        before = served_id(d)
        st = retrain_csv(d, coded)
        assert st["state"] == "failed" and st["error"]["code"] == "schema_change", st
        assert st["gates"]["schema"]["retyped"] == ["housing"], st
        assert "1 of another kind" in st["error"]["message"]
        assert served_id(d) == before
