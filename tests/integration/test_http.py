"""Black-box tests of aescored's HTTP contract (DESIGN.md section 3) against the real binary.

One daemon per module (admin token, small caps) serves most tests; tests that need a
pristine state (no previous model, stopping) start their own. Every error assertion checks
both the status and the envelope's code.
"""

import http.client
import json
import math
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import pytest

from daemon_util import (AESCORE, FEATURES, N_FEATURES, Daemon, normal_row, train_model,
                         write_csv)

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": "Bearer " + TOKEN}
MAX_BODY = 64 * 1024
MAX_BATCH = 50
MIN_ROWS = 50
TOP_K = 3


def write_config(tmp, **extra):
    token = os.path.join(str(tmp), "token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    path = os.path.join(str(tmp), "aescored.conf")
    keys = {
        "admin_token_file": token,
        "max_body_bytes": MAX_BODY,
        "max_retrain_bytes": 4 * 1024 * 1024,
        "max_batch": MAX_BATCH,
        "min_retrain_rows": MIN_ROWS,
        "top_features": TOP_K,
        "connection_timeout": 5,
        "log_level": "debug",
        # these tests retrain on purpose-made data (one epoch, a handful of repeated
        # records): the promotion gate would rightly hold such models; test_lifecycle.py
        # tests the gate
        "recent_records": 0,
    }
    keys.update(extra)
    with open(path, "w") as f:
        for k, v in keys.items():
            f.write("%s = %s\n" % (k, v))
    return path


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("http")


@pytest.fixture(scope="module")
def model(tmp):
    return train_model(tmp)


@pytest.fixture(scope="module")
def daemon(tmp, model):
    d = Daemon(model, config=write_config(tmp)).start()
    yield d
    assert d.stop() == 0
    # personal data never reaches the log: no feature value, no token
    log = d.stderr_text()
    assert TOKEN not in log
    assert "123.456789" not in log


def record(seed=1, named=True, rid=None):
    vals = normal_row(random.Random(seed))
    r = {"features": dict(zip(FEATURES, vals))} if named else {"values": vals}
    if rid is not None:
        r["id"] = rid
    return r


def raw(d, data, timeout=10):
    """Sends raw bytes on a fresh socket; returns (status, headers, body) of the reply."""
    s = socket.create_connection((d.host, d.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the daemon may answer and close before reading everything
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def assert_error(status, body, want_status, want_code):
    assert status == want_status, body
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    assert body["error"]["code"] == want_code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# ---------------------------------------------------------------- scoring

def test_score_answers_every_documented_field(daemon):
    status, r = daemon.post_json("/score", record(rid="app-1"))
    assert status == 200, r
    assert r["id"] == "app-1"
    for k in ("score", "threshold", "percentile"):
        assert isinstance(r[k], (int, float))
    assert isinstance(r["anomaly"], bool)
    assert r["anomaly"] == (r["score"] > r["threshold"])
    assert 0 <= r["percentile"] <= 100
    assert r["model_version"] >= 1 and len(r["model_id"]) == 16
    assert len(r["top_features"]) == TOP_K
    errs = [t["error"] for t in r["top_features"]]
    assert errs == sorted(errs, reverse=True)
    assert all(t["name"] in FEATURES for t in r["top_features"])


def test_named_features_and_values_give_the_same_score(daemon):
    _, a = daemon.post_json("/score", record(seed=5, named=True, rid=7))
    _, b = daemon.post_json("/score", record(seed=5, named=False))
    assert a["id"] == 7 and b["id"] is None
    assert a["score"] == b["score"]


@pytest.mark.parametrize("spelling", [b"1e400", b"-1e400", b"1.8e308"])
def test_an_id_beyond_a_double_is_refused_not_echoed_as_null(daemon, spelling):
    values = b",".join([b"0.5"] * N_FEATURES)
    one = b'{"id":' + spelling + b',"values":[' + values + b']}'
    status, r = daemon.post_json("/score", one)
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["invalid"] == ["id"]
    status, r = daemon.post_json("/score/batch", b'{"records":[' + one + b']}')
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["indices"] == [0]


def test_ids_with_an_escaped_nul_are_echoed_whole(daemon):
    ids = ["a\x00b", "a\x00c", "a", "\x00", "\\u0000", "x\x00\x00"]
    recs = [record(seed=i, rid=rid) for i, rid in enumerate(ids)]
    status, r = daemon.post_json("/score/batch", {"records": recs})
    assert status == 200, r
    assert [x["id"] for x in r["results"]] == ids
    status, one = daemon.post_json("/score", record(rid="a\x00b"))
    assert status == 200 and one["id"] == "a\x00b"


@pytest.mark.parametrize("key", ["features\x00x", "features\x00", "id\x00"])
def test_a_member_with_an_escaped_nul_is_another_member(daemon, key):
    rec = record(rid="r")
    rec[key] = rec["features"] if key.startswith("features") else "other"
    if key.startswith("features"):
        del rec["features"]
    status, r = daemon.post_json("/score", rec)
    assert_error(status, r, 422, "schema_mismatch")
    assert key in r["error"]["invalid"], r


def test_a_feature_name_with_an_escaped_nul_is_another_feature(daemon):
    rec = record()
    rec["features"]["f1\x00"] = rec["features"].pop("f1")
    status, r = daemon.post_json("/score", rec)
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["unknown"] == ["f1\x00"] and r["error"]["missing"] == ["f1"]


def test_keys_differing_after_an_escaped_nul_are_not_duplicates(daemon):
    body = b'{"records":[],"a\\u0000x":1,"a\\u0000y":2}'
    status, r = daemon.post_json("/score/batch", body)
    assert status != 200 and r["error"]["code"] != "invalid_json", r
    status, r = daemon.post_json("/score/batch", b'{"records":[],"a\\u0000x":1,"a\\u0000x":2}')
    assert_error(status, r, 400, "invalid_json")
    assert r["error"]["key"] == "a\x00x"


@pytest.mark.parametrize("path", ["/score", "/score/batch", "/retrain"])
@pytest.mark.parametrize("value", [b"01", b"1.", b".5", b"+1", b"0x10", b"-", b"1e", b"1.5.2",
                                   b'"tab\there"', b'"a\nb"', b'"bad \\q"', b'"\\u12"',
                                   b"tru", b"NaN", b"Infinity"])
def test_json_outside_rfc_8259_is_400_on_every_door(daemon, path, value):
    body = b'{"records":[{"values":[' + value + b']}]}' if path != "/score" else \
        b'{"values":[' + value + b']}'
    status, r = daemon.post_json(path, body, headers=AUTH)
    assert_error(status, r, 400, "invalid_json")
    assert "invalid JSON at byte" in r["error"]["message"], r


def test_off_pattern_record_is_an_anomaly(daemon):
    rec = {"values": [8.0, -8.0] * (N_FEATURES // 2)}
    status, r = daemon.post_json("/score", rec)
    assert status == 200 and r["anomaly"] is True and r["percentile"] == 100


def test_batch_is_scored_against_one_version(daemon):
    recs = [record(seed=i, rid=i) for i in range(10)] + [
        {"id": "odd", "values": [9.0, -9.0] * (N_FEATURES // 2)}]
    status, r = daemon.post_json("/score/batch", {"records": recs})
    assert status == 200, r
    assert [x["id"] for x in r["results"]] == list(range(10)) + ["odd"]
    assert r["anomalies"] == sum(x["anomaly"] for x in r["results"])
    assert r["results"][-1]["anomaly"] is True
    _, single = daemon.post_json("/score", recs[3])
    assert single["score"] == pytest.approx(r["results"][3]["score"], rel=1e-5)
    assert r["model_version"] == single["model_version"]
    assert r["threshold"] == single["threshold"]


def test_schema_mismatch_names_the_features(daemon):
    rec = record()
    del rec["features"]["f1"]
    rec["features"]["f_unknown"] = 1.0
    rec["features"]["f2"] = "12"
    status, r = daemon.post_json("/score", rec)
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["missing"] == ["f1"]
    assert r["error"]["unknown"] == ["f_unknown"]
    assert r["error"]["invalid"] == ["f2"]


def test_batch_mismatch_names_the_indices(daemon):
    recs = [record(seed=i) for i in range(5)]
    recs[1] = {"values": [1.0, 2.0]}
    del recs[3]["features"]["f0"]
    status, r = daemon.post_json("/score/batch", {"records": recs})
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["indices"] == [1, 3]
    assert r["error"]["missing"] == ["f0"]
    assert r["error"]["invalid"] == ["values"]


def test_batch_mismatch_counts_every_bad_record_and_lists_64(tmp_path, model):
    recs = [{"values": [1.0, 2.0]} for _ in range(100)]
    config = write_config(tmp_path, max_batch=100, max_body_bytes=1024 * 1024)
    with Daemon(model, config=config) as d:
        status, r = d.post_json("/score/batch", {"records": recs})
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["message"].startswith("100 record(s) do not fit the model; first: ")
    assert r["error"]["indices"] == list(range(64))


# ---------------------------------------------------------------- operations

def test_health_live_model_and_metrics(daemon):
    status, h = daemon.get_json("/health")
    assert status == 200 and h["status"] == "ok" and h["model_version"] >= 1
    assert daemon.get_json("/health/live") == (200, {"status": "ok"})
    status, m = daemon.get_json("/model")
    assert status == 200
    assert m["features"] == FEATURES and m["n_features"] == N_FEATURES
    assert m["layers"][-1] == {"units": N_FEATURES, "activation": "linear"}
    assert m["ensemble"] == 1 and m["threshold"] > 0
    assert m["training"]["rows"] == 400 and m["created"] > 0
    assert m["model_id"] == h["model_id"]
    status, headers, body = daemon.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in ("aescore_http_requests_total{endpoint=\"/score\",code=\"200\"}",
                 "aescore_http_request_duration_seconds_bucket{le=\"+Inf\"}",
                 "aescore_records_scored_total", "aescore_anomalies_total",
                 "aescore_score_bucket", "aescore_model_version", "aescore_model_age_seconds",
                 "aescore_training_jobs_total{outcome=\"succeeded\"}",
                 "aescore_training_duration_seconds", "aescore_training_last_loss",
                 "process_resident_memory_bytes"):
        assert name in text, name
    for line in text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_model_and_score_describe_the_parts_of_the_score(daemon, tmp_path):
    # the defaults: no neighbour term, the score is the reconstruction error
    _, m = daemon.get_json("/model")
    assert m["score"] == {"parts": ["reconstruction"], "reference": "none"}
    status, r = daemon.post_json("/score", record(seed=1))
    assert status == 200 and "parts" not in r
    # with --reference rows: GET /model says how the score is made
    model = train_model(tmp_path, name="rows.aes", extra=["--reference", "rows"])
    with Daemon(model) as d:
        _, m = d.get_json("/model")
        sc = m["score"]
        assert sc["parts"] == ["reconstruction", "neighbours"] and sc["reference"] == "rows"
        # 400 rows, 40 held out for validation: a sample of 256 of the 360 training rows
        assert sc["reference_rows"] == 256 and sc["k"] == 5
        assert sc["reconstruction"]["std"] > 0 and sc["neighbours"]["std"] > 0
        # /score gives both parts; the score is their standardised logs, summed (model.h)
        for seed in (1, 2, 3):
            status, r = d.post_json("/score", record(seed=seed))
            assert status == 200, r
            rec, nb = r["parts"]["reconstruction"], r["parts"]["neighbours"]
            assert rec > 0 and nb > 0
            rs, ns = sc["reconstruction"], sc["neighbours"]
            want = ((math.log(rec + 1e-6) - rs["mean"]) / rs["std"]
                    + (math.log(nb + 1e-6) - ns["mean"]) / ns["std"])
            assert abs(r["score"] - want) <= 1e-4 * (1 + abs(want))
            assert r["anomaly"] == (r["score"] > r["threshold"])


def test_head_is_get_without_a_body(daemon):
    status, headers, body = daemon.request("HEAD", "/health")
    assert status == 200 and body == b""


def test_unknown_path_is_404(daemon):
    status, _, body = daemon.request("GET", "/nope")
    assert_error(status, body, 404, "not_found")
    status, _, body = daemon.request("POST", "/score/", body=b"{}",
                                     headers={"Content-Type": "application/json"})
    assert_error(status, body, 404, "not_found")


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/score", "POST"),
    ("DELETE", "/score/batch", "POST"),
    ("PUT", "/retrain", "POST, GET, HEAD, DELETE"),
    ("POST", "/health", "GET, HEAD"),
    ("DELETE", "/model", "GET, HEAD"),
    ("GET", "/model/reload", "POST"),
    ("BREW", "/metrics", "GET, HEAD"),
])
def test_wrong_method_is_405_with_allow(daemon, method, path, allow):
    status, headers, body = daemon.request(method, path)
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["allow"] == allow


@pytest.mark.parametrize("ctype", [None, "text/plain", "text/csv", "application/jsonx"])
def test_score_needs_json_content_type(daemon, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    status, _, body = daemon.request("POST", "/score", body=json.dumps(record()).encode(),
                                     headers=headers)
    assert_error(status, body, 415, "unsupported_media_type")


def test_json_content_type_may_carry_a_charset(daemon):
    status, _, _ = daemon.request("POST", "/score", body=json.dumps(record()).encode(),
                                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


def test_body_over_the_cap_by_content_length_is_413(daemon):
    # refused on the headers alone: the client need not send a byte of the body
    status, _, resp = raw(daemon, b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert_error(status, resp, 413, "body_too_large")
    status, _, resp = raw(daemon, b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 99999999999999999999999"
                          b"\r\n\r\n")
    assert status in (400, 413)


def test_chunked_body_over_the_cap_is_413(daemon):
    conn = daemon.connection()
    chunk = b"1," * 4096

    def gen():
        yield b'{"values":['
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk
        yield b"1]}"

    conn.request("POST", "/score", body=gen(), encode_chunked=True,
                  headers={"Content-Type": "application/json",
                           "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert_error(r.status, r.read(), 413, "body_too_large")
    conn.close()


def test_chunked_body_under_the_cap_is_scored(daemon):
    conn = daemon.connection()
    data = json.dumps(record()).encode()
    conn.request("POST", "/score", body=iter([data[:10], data[10:]]), encode_chunked=True,
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    conn.close()


def test_content_length_with_transfer_encoding_is_refused(daemon):
    status, _, body = raw(daemon, b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 4\r\nTransfer-Encoding: "
                          b"chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert_error(status, body, 400, "invalid_request")


def raw_all(d, data, timeout=5):
    """Sends raw bytes; returns every byte the daemon sent until it closed the connection."""
    s = socket.create_connection((d.host, d.port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return out


SMUGGLED = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.mark.parametrize("lengths", [(b"2", b"40"), (b"2", b"2"), (b"40", b"2")])
def test_more_than_one_content_length_is_refused_and_the_connection_closed(daemon, lengths):
    body = b"{}" + SMUGGLED
    req = (b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + lengths[0] + b"\r\nContent-Length: " + lengths[1] +
           b"\r\n\r\n" + body)
    out = raw_all(daemon, req)
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert b'"code":"invalid_request"' in out
    assert b"Connection: close" in out
    assert out.count(b"HTTP/1.1 ") == 1  # the bytes after the body never became a request


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"chunked, chunked", b"identity"])
def test_a_transfer_coding_other_than_chunked_is_501(daemon, coding):
    req = (b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: " + coding + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + SMUGGLED)
    out = raw_all(daemon, req)
    assert out.startswith(b"HTTP/1.1 501"), out[:200]
    assert b'"code":"not_implemented"' in out
    assert out.count(b"HTTP/1.1 ") == 1


def test_http_1_1_without_host_is_400_and_1_0_without_host_is_served(daemon):
    out = raw_all(daemon, b"GET /health HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    out = raw_all(daemon, b"GET /health HTTP/1.0\r\n\r\n")
    assert b" 200 " in out.split(b"\r\n")[0], out[:200]


@pytest.mark.parametrize("path", [b"/score%00", b"/score%00/../../model", b"/score%2f",
                                  b"/x/%2e%2e/score", b"/score/", b"/score/."])
def test_a_path_is_routed_only_when_it_is_exactly_a_route(daemon, path):
    body = json.dumps(record()).encode()
    req = (b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" +
           body)
    out = raw_all(daemon, req)
    assert out.startswith(b"HTTP/1.1 404"), (path, out[:200])


def test_the_absolute_form_of_a_target_is_routed(daemon):
    body = json.dumps(record()).encode()
    req = (b"POST http://127.0.0.1:%d/score HTTP/1.1\r\nHost: t\r\n" % daemon.port +
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\nConnection: close\r\n\r\n" + body)
    out = raw_all(daemon, req)
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert b'"score":' in out


def test_a_query_value_with_an_encoded_nul_is_not_cut(daemon):
    status, _, data = daemon.request("POST", "/retrain?epochs=3%00x", body=b"a\n1\n",
                                     headers=dict(AUTH, **{"Content-Type": "text/csv"}))
    r = json.loads(data)
    assert_error(status, r, 400, "invalid_request")
    assert r["error"]["param"] == "epochs"


# ---------------------------------------------------------------- admin auth

@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
    {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer " + TOKEN[:-1]}])
@pytest.mark.parametrize("method,path", [
    ("POST", "/retrain"), ("DELETE", "/retrain"), ("POST", "/model/reload"),
    ("POST", "/model/rollback")])
def test_admin_endpoints_need_the_token(daemon, method, path, headers):
    h = dict(headers)
    h["Content-Type"] = "application/json"
    status, rh, body = daemon.request(method, path, body=b"{}", headers=h)
    assert_error(status, body, 401, "unauthorized")
    assert rh["www-authenticate"].startswith("Bearer")


def test_retrain_status_needs_no_token(daemon):
    status, st = daemon.get_json("/retrain")
    assert status == 200 and st["state"] in ("idle", "succeeded", "failed", "cancelled")


# ---------------------------------------------------------------- retrain

def retrain_body(n=200, seed=11, named=True, params=None):
    rnd = random.Random(seed)
    recs = []
    for _ in range(n):
        v = normal_row(rnd)
        recs.append({"features": dict(zip(FEATURES, v))} if named else {"values": v})
    body = {"records": recs}
    body["params"] = params if params is not None else {"epochs": 3, "ensemble": 1}
    return body


def start_retrain(d, body):
    status, r = d.post_json("/retrain", body, headers=AUTH)
    assert status == 202, r
    assert r["state"] == "running" and r["job_id"] >= 1
    return r


def test_retrain_flow_swaps_the_served_model(daemon):
    _, before = daemon.get_json("/health")
    rows = 300
    job = start_retrain(daemon, retrain_body(rows, params={
        "epochs": 3, "batch": 32, "lr": 0.005, "hidden": [8, 3, 8], "activation": "tanh",
        "patience": 2, "validation_split": 0.2, "seed": 3, "threshold_quantile": 0.95,
        "ensemble": 1}))
    assert job["rows"] == rows
    st = daemon.wait_job(job["job_id"])
    assert st["state"] == "succeeded", st
    assert st["epochs"] == 3 and st["finished"] >= st["started"] > 0
    assert st["model_version"] == before["model_version"] + 1
    assert st["error"] is None
    # the loss curve: one point per epoch of the one member, ending where the job ended
    assert [(l["member"], l["epoch"]) for l in st["history"]] == [(0, 1), (0, 2), (0, 3)]
    assert all(l["train_loss"] > 0 and l["val_loss"] > 0 for l in st["history"])
    assert st["history"][-1]["train_loss"] == pytest.approx(st["train_loss"], rel=1e-6)
    assert st["history"][-1]["val_loss"] == pytest.approx(st["val_loss"], rel=1e-6)
    _, m = daemon.get_json("/model")
    assert m["model_version"] == st["model_version"]
    assert [l["units"] for l in m["layers"]] == [8, 3, 8, N_FEATURES]
    assert m["layers"][0]["activation"] == "tanh"
    assert m["training"]["threshold_quantile"] == pytest.approx(0.95)
    _, s = daemon.post_json("/score", record())
    assert s["model_version"] == st["model_version"]
    assert s["threshold"] == m["threshold"]
    assert s["model_id"] == m["model_id"] != before["model_id"]


def test_a_long_job_keeps_the_shape_of_its_loss_curve(daemon):
    """Past 1024 points the curve keeps every second epoch, then every fourth, ..., and
    every member's last epoch."""
    epochs = 1500
    job = start_retrain(daemon, retrain_body(120, params={
        "epochs": epochs, "patience": 0, "hidden": [2], "ensemble": 2, "batch": 64}))
    st = daemon.wait_job(job["job_id"])
    assert st["state"] == "succeeded", st
    hist = st["history"]
    assert 512 <= len(hist) <= 1024
    for member in (0, 1):
        mine = [p["epoch"] for p in hist if p["member"] == member]
        assert mine[-1] == epochs  # the member's last epoch, whatever the stride
        assert mine == sorted(set(mine))
        assert all(e % 4 == 0 for e in mine[:-1]), mine[:8]  # 3000 points: stride 4
    assert [p["member"] for p in hist] == sorted(p["member"] for p in hist)


def test_retrain_from_csv_with_query_params(daemon, tmp):
    csv = write_csv(os.path.join(str(tmp), "retrain.csv"), rows=120, seed=21, label=True,
                    features=list(reversed(FEATURES)))
    with open(csv, "rb") as f:
        data = f.read()
    status, _, body = daemon.request(
        "POST", "/retrain?epochs=2&hidden=6,2,6&ensemble=1&seed=9", body=data,
        headers=dict(AUTH, **{"Content-Type": "text/csv"}))
    assert status == 202, body
    assert json.loads(body)["rows"] == 120
    st = daemon.wait_job()
    assert st["state"] == "succeeded", st
    # columns came reversed; the served schema keeps its order for "values" clients
    _, m = daemon.get_json("/model")
    assert m["features"] == FEATURES


def test_retrain_with_a_constant_column_trains(daemon):
    body = retrain_body(n=100)
    for r in body["records"]:
        r["features"]["f4"] = 1.0
    start_retrain(daemon, body)
    assert daemon.wait_job()["state"] == "succeeded"


@pytest.mark.parametrize("params,bad", [
    ({"epochs": "many"}, "epochs"), ({"epochs": -1}, "epochs"), ({"epochs": 1.5}, "epochs"),
    ({"lr": 0}, "lr"), ({"hidden": "64,,16"}, "hidden"), ({"hidden": [8, 0]}, "hidden"),
    ({"activation": "swish"}, "activation"), ({"validation_split": 2}, "validation_split"),
    ({"threshold_quantile": 1.5}, "threshold_quantile"), ({"learning_rate": 0.1},
                                                          "learning_rate"),
    ({"seed": -3}, "seed")])
def test_retrain_refuses_bad_params_by_name(daemon, params, bad):
    status, r = daemon.post_json("/retrain", retrain_body(params=params), headers=AUTH)
    assert_error(status, r, 400, "invalid_request")
    assert r["error"]["param"] == bad


def test_retrain_params_out_of_bounds_are_400(daemon):
    status, r = daemon.post_json("/retrain", retrain_body(params={"ensemble": 1000}),
                                 headers=AUTH)
    assert_error(status, r, 400, "invalid_request")


def test_retrain_counts_every_bad_record_and_lists_64(daemon):
    body = retrain_body(n=200)
    for rec in body["records"][:100]:
        rec["features"]["extra"] = 1.0
    status, r = daemon.post_json("/retrain", body, headers=AUTH)
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["message"].startswith("100 record(s) do not fit the schema; first: ")
    assert r["error"]["indices"] == list(range(64))
    assert r["error"]["unknown"] == ["extra"]


def test_retrain_with_too_few_rows_is_422(daemon):
    status, r = daemon.post_json("/retrain", retrain_body(n=MIN_ROWS - 1), headers=AUTH)
    assert_error(status, r, 422, "too_few_rows")


def test_retrain_records_must_fit_the_served_schema(daemon):
    body = retrain_body(n=60)
    body["records"][7]["features"]["extra"] = 1.0
    status, r = daemon.post_json("/retrain", body, headers=AUTH)
    assert_error(status, r, 422, "schema_mismatch")
    assert r["error"]["indices"] == [7] and r["error"]["unknown"] == ["extra"]


@pytest.mark.parametrize("csv", [
    "f0,f1\n1,2\n3\n",                       # ragged
    "",                                       # empty
])
def test_retrain_refuses_broken_csv(daemon, csv):
    status, _, body = daemon.request("POST", "/retrain", body=csv.encode(),
                                     headers=dict(AUTH, **{"Content-Type": "text/csv"}))
    assert_error(status, body, 400, "invalid_request")


def test_retrain_refuses_text_where_the_model_reads_numbers(daemon):
    rows = ["1,2,%s,4,5,6,7,8" % ("x" if i == 30 else "3") for i in range(60)]
    csv = "f0,f1,f2,f3,f4,f5,f6,f7\n" + "\n".join(rows) + "\n"
    status, _, body = daemon.request("POST", "/retrain", body=csv.encode(),
                                     headers=dict(AUTH, **{"Content-Type": "text/csv"}))
    assert_error(status, body, 422, "schema_mismatch")
    assert json.loads(body)["error"]["invalid"] == ["f2"]


def test_retrain_csv_with_other_columns_is_422(daemon):
    csv = "a,b\n" + "1,2\n" * 60
    status, _, body = daemon.request("POST", "/retrain", body=csv.encode(),
                                     headers=dict(AUTH, **{"Content-Type": "text/csv"}))
    assert_error(status, body, 422, "schema_mismatch")
    assert json.loads(body)["error"]["unknown"] == ["a", "b"]


def test_cancel_keeps_the_served_model_and_busy_is_409(daemon):
    _, before = daemon.get_json("/health")
    job = start_retrain(daemon, retrain_body(n=400, params={
        "epochs": 100000, "patience": 0, "ensemble": 1, "batch": 1}))
    status, r = daemon.post_json("/retrain", retrain_body(), headers=AUTH)
    assert_error(status, r, 409, "training_in_progress")
    # /health stays 200 and scoring keeps working while training runs
    assert daemon.get_json("/health")[0] == 200
    assert daemon.post_json("/score", record())[0] == 200
    status, _, body = daemon.request("DELETE", "/retrain", headers=AUTH)
    assert status == 202, body
    st = daemon.wait_job(job["job_id"])
    assert st["state"] == "cancelled" and st["error"]
    _, after = daemon.get_json("/health")
    assert after["model_version"] == before["model_version"]
    assert after["model_id"] == before["model_id"]
    status, _, body = daemon.request("DELETE", "/retrain", headers=AUTH)
    assert_error(status, body, 409, "no_job")


def test_rollback_then_reload(daemon, model):
    _, before = daemon.get_json("/health")
    start_retrain(daemon, retrain_body(seed=99))
    assert daemon.wait_job()["state"] == "succeeded"
    _, new = daemon.get_json("/health")
    status, r = daemon.post_json("/model/rollback", b"", headers=AUTH)
    assert status == 200, r
    assert r["model_id"] == before["model_id"]
    assert r["model_version"] > new["model_version"]
    _, s = daemon.post_json("/score", record())
    assert s["model_id"] == before["model_id"]
    # the rollback was written to the file: a reload serves the same model again
    status, r = daemon.post_json("/model/reload", b"", headers=AUTH)
    assert status == 200, r
    assert r["model_id"] == before["model_id"]


def test_reload_of_a_corrupt_file_keeps_the_model(daemon, model):
    _, before = daemon.get_json("/health")
    with open(model, "rb") as f:
        good = f.read()
    try:
        with open(model, "r+b") as f:
            f.seek(len(good) // 2)
            f.write(b"\xde\xad\xbe\xef")
        status, r = daemon.post_json("/model/reload", b"", headers=AUTH)
        assert_error(status, r, 422, "model_invalid")
    finally:
        with open(model, "wb") as f:
            f.write(good)
    _, after = daemon.get_json("/health")
    assert after["model_id"] == before["model_id"]
    assert daemon.post_json("/score", record())[0] == 200


def test_rollback_without_previous_model_is_409(tmp):
    model = train_model(tmp, name="fresh.aem", seed=4)
    with Daemon(model) as d:
        status, r = d.post_json("/model/rollback", b"")
        assert_error(status, r, 409, "no_previous_model")
        status, _, body = d.request("DELETE", "/retrain")
        assert_error(status, body, 409, "no_job")
    assert d.returncode == 0


def test_top_features_zero_omits_them(tmp, model):
    cfg = os.path.join(str(tmp), "k0.conf")
    with open(cfg, "w") as f:
        f.write("top_features = 0\n")
    with Daemon(model, config=cfg) as d:
        status, r = d.post_json("/score", record())
        assert status == 200 and "top_features" not in r
    assert d.returncode == 0


def test_stopping_daemon_answers_503_and_finishes_requests_in_flight(tmp, model):
    d = Daemon(model, config=write_config(tmp)).start()
    idle = d.connection()
    assert d.request("GET", "/health", conn=idle)[0] == 200
    # a request in flight: headers and half the body sent
    slow = socket.create_connection((d.host, d.port), timeout=10)
    data = json.dumps(record(rid="slow")).encode()
    slow.sendall(b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data[:10])
    time.sleep(0.2)
    d.signal(15)
    time.sleep(0.5)
    status, _, body = d.request("GET", "/health", conn=idle)
    assert_error(status, body, 503, "stopping")
    # a connection made now is turned away at once, closed before any reply (under
    # MHD_quiesce_daemon it waited in the listen backlog until the daemon exited)
    try:
        late = socket.create_connection((d.host, d.port), timeout=5)
        late.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert late.recv(4096) == b""
        late.close()
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        pass
    slow.sendall(data[10:])
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = slow.recv(65536)
        if not chunk:
            break
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert b'"id":"slow"' in reply
    slow.close()
    idle.close()
    assert d.stop() == 0


# ---------------------------------------------------------------- concurrency

def test_scoring_during_back_to_back_retrains(daemon):
    stop = threading.Event()
    failures, counts, seen = [], [], set()

    def client(i):
        conn = daemon.connection()
        last, n = 0, 0
        body = json.dumps(record(seed=i, rid=i)).encode()
        try:
            while not stop.is_set():
                status, _, data = daemon.request(
                    "POST", "/score", body=body, conn=conn,
                    headers={"Content-Type": "application/json"})
                r = json.loads(data)
                if status != 200:
                    failures.append((status, r))
                    continue
                if r["model_version"] < last:
                    failures.append(("version went back", last, r["model_version"]))
                last = r["model_version"]
                seen.add(last)
                n += 1
        except Exception as e:  # noqa: BLE001 - any client error is a failure
            failures.append(repr(e))
        finally:
            conn.close()
            counts.append(n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        _, first = daemon.get_json("/health")
        for k in range(20):
            job = start_retrain(daemon, retrain_body(n=100, seed=1000 + k,
                                                     params={"epochs": 1, "ensemble": 1}))
            assert daemon.wait_job(job["job_id"])["state"] == "succeeded"
        _, last = daemon.get_json("/health")
        assert last["model_version"] == first["model_version"] + 20
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert all(n > 0 for n in counts), counts
    assert len(seen) > 5, seen  # the clients really scored across many swaps


# ---------------------------------------------------------------- hostile input

def _score_body(values):
    return ('{"values":[%s]}' % ",".join(values)).encode()


GOOD = ["0.5"] * N_FEATURES
HOSTILE = [
    # (name, path, body, content type, status, code)
    ("malformed", "/score", b'{"values": [1, 2', "application/json", 400, "invalid_json"),
    ("trailing garbage", "/score", _score_body(GOOD) + b" x", "application/json", 400,
     "invalid_json"),
    ("two values", "/score", _score_body(GOOD) + _score_body(GOOD), "application/json", 400,
     "invalid_json"),
    ("duplicate keys", "/score", b'{"values":[1],"values":[%s]}' % ",".join(GOOD).encode(),
     "application/json", 400, "invalid_json"),
    ("repeated feature", "/score",
     json.dumps(record())[:-2].encode() + b',"f3":1}}', "application/json", 422,
     "schema_mismatch"),
    ("string value", "/score", _score_body(GOOD[:-1] + ['"1"']), "application/json", 422,
     "schema_mismatch"),
    ("object value", "/score", _score_body(GOOD[:-1] + ["{}"]), "application/json", 422,
     "schema_mismatch"),
    ("bool value", "/score", _score_body(GOOD[:-1] + ["true"]), "application/json", 422,
     "schema_mismatch"),
    ("null value", "/score", _score_body(GOOD[:-1] + ["null"]), "application/json", 422,
     "schema_mismatch"),
    ("NaN", "/score", _score_body(GOOD[:-1] + ["NaN"]), "application/json", 400,
     "invalid_json"),
    ("Infinity", "/score", _score_body(GOOD[:-1] + ["Infinity"]), "application/json", 400,
     "invalid_json"),
    ("1e999", "/score", _score_body(GOOD[:-1] + ["1e999"]), "application/json", 422,
     "schema_mismatch"),
    ("-1e999", "/score", _score_body(["-1e999"] + GOOD[1:]), "application/json", 422,
     "schema_mismatch"),
    ("float overflow", "/score", _score_body(["1e39"] + GOOD[1:]), "application/json", 422,
     "schema_mismatch"),
    ("short values", "/score", _score_body(GOOD[:-1]), "application/json", 422,
     "schema_mismatch"),
    ("long values", "/score", _score_body(GOOD + ["1"]), "application/json", 422,
     "schema_mismatch"),
    ("empty body", "/score", b"", "application/json", 400, "invalid_json"),
    ("whitespace body", "/score", b"  \n", "application/json", 400, "invalid_json"),
    ("array body", "/score", b"[1,2]", "application/json", 400, "invalid_request"),
    ("id of wrong type", "/score", b'{"id":[1],"values":[%s]}' % ",".join(GOOD).encode(),
     "application/json", 422, "schema_mismatch"),
    ("nesting 10000 deep", "/score", b"[" * 10000 + b"]" * 10000, "application/json", 400,
     "invalid_json"),
    ("nesting in a string is fine but unknown", "/score",
     b'{"values":[%s],"x":"[[[[[[[[[[[[[[[[[[[[[[["}' % ",".join(GOOD).encode(),
     "application/json", 422, "schema_mismatch"),
    ("non-UTF-8 key", "/score", b'{"features":{"\xff\xfe":1}}', "application/json", 400,
     "invalid_json"),
    ("NUL escape in key", "/score", b'{"features":{"f0\\u0000x":1}}', "application/json", 422,
     "schema_mismatch"),
    ("batch over max_batch", "/score/batch",
     json.dumps({"records": [{"values": [0.5] * N_FEATURES}] * (MAX_BATCH + 1)}).encode(),
     "application/json", 400, "invalid_request"),
    ("empty batch", "/score/batch", b'{"records":[]}', "application/json", 400,
     "invalid_request"),
    ("batch not an array", "/score/batch", b'{"records":{}}', "application/json", 400,
     "invalid_request"),
    ("batch extra member", "/score/batch", b'{"records":[],"x":1}', "application/json", 400,
     "invalid_request"),
    ("wrong content type", "/score", _score_body(GOOD), "text/plain", 415,
     "unsupported_media_type"),
    ("no content type", "/score", _score_body(GOOD), None, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_gets_exact_errors(daemon, case):
    _, path, body, ctype, want_status, want_code = case
    headers = {"Content-Type": ctype} if ctype else {}
    status, _, resp = daemon.request("POST", path, body=body, headers=headers)
    assert_error(status, resp, want_status, want_code)


def test_hostile_transport_then_scoring_is_still_correct(daemon):
    _, ref = daemon.post_json("/score", record(seed=42))
    # a 100 KB URL and 100 KB of headers: libmicrohttpd refuses them itself
    status, _, _ = raw(daemon, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 414
    status, _, _ = raw(daemon, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 100000
                       + b"\r\n\r\n")
    assert status == 431
    status, _, body = raw(daemon, b"GET /health?" + b"q=1&" * 100 + b" HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    assert status == 200
    for method in (b"BREW", b"OPTIONS", b"TRACE", b"PATCH"):
        status, headers, body = raw(daemon, method + b" /score HTTP/1.1\r\nHost: t\r\n"
                                    b"Connection: close\r\n\r\n")
        assert_error(status, body, 405, "method_not_allowed")
        assert headers["allow"] == "POST"
    status, _, body = raw(daemon, b"GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
    assert_error(status, body, 404, "not_found")
    # the daemon is unharmed and scores exactly as before
    _, again = daemon.post_json("/score", record(seed=42))
    assert again["model_id"] == ref["model_id"]
    assert again["score"] == ref["score"]
    assert daemon.get_json("/health")[0] == 200


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\nno colon here\r\nHost: t\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: t\r\n\r\n", 505),
])
def test_what_libmicrohttpd_answers_itself_is_the_status_the_readme_names(daemon, request_bytes,
                                                                          status):
    """These never reach aescored; README ("Security and limits") says which they are and
    that their body is libmicrohttpd's, which it gives no way to set."""
    got, headers, _ = raw(daemon, request_bytes)
    assert got == status
    assert headers.get("connection", "").lower() == "close"
    assert daemon.get_json("/health")[0] == 200


def test_headers_of_the_documented_size_are_read_at_the_default_memory_limit(daemon):
    """config: connection_memory_limit 8K reads headers of about 7.5 KiB; a token that
    size scores as a short one does, and one past the limit gets 431 (not a dropped
    connection, not a 200 with the header cut)."""
    body = json.dumps(record(seed=5)).encode()
    _, ref = daemon.post_json("/score", record(seed=5))

    def post_with(pad):
        return raw(daemon, b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                   b"\r\nX-Pad: " + b"p" * pad + b"\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n" % len(body) + body)

    status, _, got = post_with(7 * 1024)
    assert status == 200
    assert json.loads(got)["score"] == ref["score"]
    assert post_with(9 * 1024)[0] == 431


def test_a_served_model_with_its_fields_in_another_order_is_read_by_name(tmp_path):
    """The fast reader keeps each thread's key table for the model it last read (by id).
    After a reload to a model of the same field names in the reverse order, a record that
    names its fields in the old order lands each value in the field of its name (as the
    same values given by position in the new order), on one connection (one pool thread);
    a rollback brings the old order back."""
    a = train_model(tmp_path, name="a.aes", seed=7)
    reversed_names = list(reversed(FEATURES))
    csv = write_csv(str(tmp_path / "b.csv"), seed=8, features=reversed_names)
    b = str(tmp_path / "b.aes")
    subprocess.run([AESCORE, "train", "--data", csv, "--out", b, "--quiet", "--epochs", "5",
                    "--ensemble", "1", "--seed", "8"], check=True, timeout=120)
    served = str(tmp_path / "served.aes")
    shutil.copyfile(a, served)
    by_name = dict(zip(FEATURES, normal_row(random.Random(3))))  # in the first model's order
    with Daemon(served) as d:
        conn = d.connection()
        status, first = d.post_json("/score", {"features": by_name}, conn=conn)
        _, first_values = d.post_json("/score", {"values": [by_name[f] for f in FEATURES]},
                                      conn=conn)
        assert status == 200 and first["score"] == first_values["score"]
        shutil.copyfile(b, served + ".new")
        os.replace(served + ".new", served)
        status, _ = d.post_json("/model/reload", b"", conn=conn)
        assert status == 200
        status, named = d.post_json("/score", {"features": by_name}, conn=conn)
        _, positional = d.post_json(
            "/score", {"values": [by_name[f] for f in reversed_names]}, conn=conn)
        assert status == 200 and named["score"] == positional["score"]
        assert named["model_id"] != first["model_id"]
        status, _ = d.post_json("/model/rollback", b"", conn=conn)
        assert status == 200
        status, again = d.post_json("/score", {"features": by_name}, conn=conn)
        assert status == 200 and again["score"] == first["score"]
