"""The Open Inference Protocol (KServe v2 REST) against the real daemon.

Conformance: the request shapes of the protocol's required API (kserve/kserve
docs/predict-api/v2/required_api.md, as ../shared/SERVING-NOTES.md section 2 quotes it) and
malformed ones. Every score /v2/models/{name}/infer gives equals /score/batch's for the same
records, bit for bit (both reply with the same number text, which the float round-trips),
whichever reader (the one-pass one or the cJSON one) read the request. SpecClient knows
only the protocol: it discovers the inputs from the model's metadata and scores with them.
"""

import json
import os
import random
import subprocess

import pytest

from daemon_util import AESCORE, FEATURES, Daemon, normal_row, train_model

INFER = "/v2/models/aescore/infer"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def numeric_model(tmp_path_factory):
    return train_model(tmp_path_factory.mktemp("oip"))


@pytest.fixture(scope="module")
def daemon(numeric_model):
    d = Daemon(numeric_model).start()
    yield d
    assert d.stop() == 0


def rows(n, seed=11):
    rnd = random.Random(seed)
    out = [normal_row(rnd) for _ in range(n)]
    out[0] = [v * 7 for v in out[0]]  # one outlier
    return out


def record_tensor(data, datatype="FP64", shape=None, flat=False):
    return {"name": "record", "datatype": datatype,
            "shape": shape or [len(data), len(data[0])],
            "data": [v for r in data for v in r] if flat else data}


def infer(d, body, path=INFER, headers=None):
    status, _, data = d.request("POST", path, body=json.dumps(body).encode()
                                if not isinstance(body, bytes) else body,
                                headers=dict(JSON, **(headers or {})))
    return status, json.loads(data)


def batch_scores(d, data, features=FEATURES):
    status, r = d.post_json("/score/batch", {"records": [
        {"features": dict(zip(features, row))} for row in data]})
    assert status == 200, r
    return r


def outputs(reply):
    return {o["name"]: o for o in reply["outputs"]}


def raw_numbers(body, name):
    """The number texts of one output as the daemon wrote them (not re-parsed)."""
    start = body.index(b'"name":"%s"' % name.encode())
    data = body[body.index(b'"data":[', start) + 8:]
    return data[:data.index(b"]")].split(b",")


# ------------------------------------------------------------------------ health, metadata

def test_server_health_and_metadata(daemon):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/aescore/ready"):
        assert daemon.request("GET", path)[0] == 200, path
    status, meta = daemon.get_json("/v2")
    assert status == 200
    assert meta["name"] == "aescored" and isinstance(meta["version"], str)
    assert meta["extensions"] == []


def test_model_metadata_declares_the_tensors(daemon):
    status, meta = daemon.get_json("/v2/models/aescore")
    assert status == 200, meta
    assert meta["name"] == "aescore" and meta["platform"]
    assert meta["inputs"] == [{"name": "record", "datatype": "FP64", "shape": [-1, 8]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("instance_score", "FP64", [-1]), ("is_outlier", "BOOL", [-1]),
        ("threshold", "FP64", [1]), ("percentile", "FP64", [-1]),
        ("feature_score", "FP64", [-1, 8])]
    _, health = daemon.get_json("/health")
    assert meta["versions"] == [str(health["model_version"])]


def test_versions_name_the_served_model(daemon):
    _, health = daemon.get_json("/health")
    for v in (str(health["model_version"]), health["model_id"]):
        base = "/v2/models/aescore/versions/" + v
        assert daemon.request("GET", base)[0] == 200
        assert daemon.request("GET", base + "/ready")[0] == 200
        status, r = infer(daemon, {"inputs": [record_tensor(rows(2))]}, path=base + "/infer")
        assert status == 200, r
        assert r["model_version"] == str(health["model_version"])
        assert r["parameters"]["model_id"] == health["model_id"]


@pytest.mark.parametrize("path", [
    "/v2/models/other", "/v2/models/other/ready", "/v2/models/aescore/versions/999",
    "/v2/models/aescore/versions/999/ready", "/v2/models/aescore/versions/0123456789abcdef",
    "/v2/models/aescore/versions/" + "9" * 40, "/v2/models/Aescore", "/v2/nothing",
    "/v2/models/aescore/", "/v2/models/aescore/versions//ready"])
def test_unknown_models_and_versions_are_404_in_the_protocol_form(daemon, path):
    for method in ("GET", "POST"):
        p = path + "/infer" if method == "POST" and not path.endswith("/") else path
        status, _, body = daemon.request(method, p, body=b"{}" if method == "POST" else None,
                                         headers=JSON)
        assert status == 404, (p, body)
        assert isinstance(json.loads(body)["error"], str), body


def test_wrong_methods_are_405_with_allow(daemon):
    status, h, body = daemon.request("GET", INFER)
    assert status == 405 and h["allow"] == "POST" and isinstance(json.loads(body)["error"], str)
    status, h, body = daemon.request("POST", "/v2/models/aescore", body=b"{}", headers=JSON)
    assert status == 405 and "GET" in h["allow"]


def test_native_errors_keep_their_envelope(daemon):
    status, r = daemon.post_json("/score/batch", {"records": []})
    assert status == 400 and r["error"]["code"] == "invalid_request"


# ------------------------------------------------------------------------ inference

@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
@pytest.mark.parametrize("flat", [False, True])
def test_infer_scores_equal_score_batch_bit_for_bit(daemon, datatype, flat):
    data = rows(50)
    status, _, body = daemon.request("POST", INFER, body=json.dumps({
        "id": "r-42", "inputs": [record_tensor(data, datatype, flat=flat)]}).encode(),
        headers=JSON)
    assert status == 200, body
    r = json.loads(body)
    b = batch_scores(daemon, data)
    assert r["model_name"] == "aescore" and r["id"] == "r-42"
    assert r["model_version"] == str(b["model_version"])
    assert r["parameters"]["model_id"] == b["model_id"]
    out = outputs(r)
    assert list(out) == ["instance_score", "is_outlier", "threshold", "percentile"]
    assert out["instance_score"]["shape"] == [50] and out["instance_score"]["datatype"] == "FP64"
    assert out["instance_score"]["data"] == [x["score"] for x in b["results"]]
    assert out["is_outlier"]["datatype"] == "BOOL"
    assert out["is_outlier"]["data"] == [x["anomaly"] for x in b["results"]]
    assert out["is_outlier"]["data"][0] is True
    assert out["threshold"] == {"name": "threshold", "datatype": "FP64", "shape": [1],
                                "data": [b["threshold"]]}
    assert out["percentile"]["data"] == [x["percentile"] for x in b["results"]]
    # the same text, not only the same value after parsing
    _, _, native = daemon.request("POST", "/score/batch", body=json.dumps({"records": [
        {"values": row} for row in data]}).encode(), headers=JSON)
    texts = [t.split(b",")[0] for t in native.split(b'"score":')[1:]]
    assert raw_numbers(body, "instance_score") == texts


def test_both_readers_give_the_same_reply(daemon):
    """The one-pass reader takes the common form; "parameters" sends the body to cJSON."""
    data = rows(20, seed=5)
    common = {"id": "x", "inputs": [record_tensor(data)], "outputs": [
        {"name": "percentile"}, {"name": "instance_score"}, {"name": "feature_score"}]}
    slow = dict(common, parameters={"content_type": "np"})
    slow_tensor = dict(common, inputs=[dict(record_tensor(data), parameters={})])
    ra, rb, rc = (infer(daemon, body) for body in (common, slow, slow_tensor))
    assert ra[0] == rb[0] == rc[0] == 200
    assert ra[1] == rb[1] == rc[1]
    assert [o["name"] for o in ra[1]["outputs"]] == ["percentile", "instance_score",
                                                     "feature_score"]


def test_outputs_select_and_feature_score_is_per_field(daemon):
    data = rows(3)
    status, r = infer(daemon, {"inputs": [record_tensor(data)],
                               "outputs": [{"name": "feature_score"}, {"name": "is_outlier"}]})
    assert status == 200, r
    out = outputs(r)
    assert list(out) == ["feature_score", "is_outlier"]
    fs = out["feature_score"]
    assert fs["shape"] == [3, 8] and fs["datatype"] == "FP64" and len(fs["data"]) == 24
    # the mean of the per-field squared errors is the score's reconstruction part (float
    # sums: close, not exact); POST /score gives the parts of a combined score
    scores = []
    for row in data:
        status, one = daemon.post_json("/score", {"features": dict(zip(FEATURES, row))})
        assert status == 200, one
        scores.append(one["parts"]["reconstruction"] if "parts" in one else one["score"])
    for i, s in enumerate(scores):
        assert abs(sum(fs["data"][i * 8:(i + 1) * 8]) / 8 - s) <= 1e-5 * max(1, s)
    assert "id" not in r


def test_per_field_tensors_on_a_numeric_model(daemon):
    data = rows(4)
    inputs = [{"name": f, "datatype": "FP32", "shape": [4], "data": [r[i] for r in data]}
              for i, f in enumerate(FEATURES)]
    status, r = infer(daemon, {"inputs": inputs[::-1]})
    assert status == 200, r
    assert outputs(r)["instance_score"]["data"] == [
        x["score"] for x in batch_scores(daemon, data)["results"]]
    # integers as INT* tensors
    ints = [[float(round(v)) for v in row] for row in data]
    inputs = [{"name": f, "datatype": "INT32", "shape": [4], "data": [int(r[i]) for r in ints]}
              for i, f in enumerate(FEATURES)]
    status, r = infer(daemon, {"inputs": inputs})
    assert status == 200, r
    assert outputs(r)["instance_score"]["data"] == [
        x["score"] for x in batch_scores(daemon, ints)["results"]]


def bad(data=None, **tensor):
    t = record_tensor(data or rows(2))
    t.update(tensor)
    return {"inputs": [t]}


@pytest.mark.parametrize("body", [
    bad(shape=[2, 7]), bad(shape=[3, 8]), bad(shape=[16]), bad(shape=[2, 8, 1]),
    bad(shape=[-1, 8]), bad(shape=[0, 8]), bad(shape=[2.5, 8]), bad(shape="2,8"), bad(shape=[]),
    bad(datatype="INT64"), bad(datatype="BYTES"), bad(datatype="FP16"), bad(datatype="fp64"),
    bad(datatype=64), bad(data=[[1] * 8, [1] * 7]), bad(data=[[1] * 8, [1] * 9]),
    bad(data=[[1] * 16, []]),
    bad(data=[[1] * 8, ["1"] * 8]), bad(data=[[1] * 8, [None] * 8]), bad(data=[[1] * 8, [True] * 8]),
    bad(data=[[1] * 8, [1e39] * 8]), {"inputs": [dict(record_tensor(rows(2)), data=[1] * 15)]},
    {"inputs": [dict(record_tensor(rows(2)), data=[[1] * 8, [[1]] * 8])]},
    {"inputs": [dict(record_tensor(rows(2)), data=[1] * 8 + [[1] * 8])]},
    {"inputs": [dict(record_tensor(rows(2)), data={"a": 1})]},
    {"inputs": [{"name": "record", "datatype": "FP64", "shape": [1, 8]}]},
    {"inputs": [{"name": "record", "shape": [1, 8], "data": [1] * 8}]},
    {"inputs": [dict(record_tensor(rows(2)), extra=1)]},
    {"inputs": [dict(record_tensor(rows(2)), name="nope")]},
    {"inputs": [record_tensor(rows(2)), record_tensor(rows(2))]},
    {"inputs": [record_tensor(rows(2)), {"name": "f0", "datatype": "FP64", "shape": [2],
                                          "data": [1, 2]}]},
    {"inputs": [{"name": "f0", "datatype": "FP64", "shape": [2], "data": [1, 2]}]},
    {"inputs": [{"name": f, "datatype": "FP64", "shape": [2 if f != "f7" else 3],
                 "data": [1] * (2 if f != "f7" else 3)} for f in FEATURES]},
    {"inputs": [{"name": f, "datatype": "INT8", "shape": [1], "data": [1.5]} for f in FEATURES]},
    {"inputs": [{"name": f, "datatype": "UINT8", "shape": [1], "data": [-1]} for f in FEATURES]},
    {"inputs": [{"name": f, "datatype": "INT8", "shape": [1], "data": [300]} for f in FEATURES]},
    {"inputs": [{"name": f, "datatype": "BYTES", "shape": [1], "data": ["1"]} for f in FEATURES]},
    {"inputs": []}, {"inputs": {}}, {}, [], "x", {"inputs": [record_tensor(rows(2))], "x": 1},
    dict(bad(), id=7), dict(bad(), id=None), dict(bad(), parameters=[1]),
    dict(bad(), outputs=[]), dict(bad(), outputs=[{"name": "score"}]),
    dict(bad(), outputs=[{"name": "threshold"}, {"name": "threshold"}]),
    dict(bad(), outputs=[{"name": "threshold", "x": 1}]), dict(bad(), outputs=["threshold"]),
])
def test_malformed_requests_are_400_in_the_protocol_form(daemon, body):
    status, r = infer(daemon, body)
    assert status == 400, (body, r)
    assert isinstance(r["error"], str) and r["error"], r


@pytest.mark.parametrize("raw", [b"", b"{", b'{"inputs": [] } x', b'{"inputs":[],"inputs":[]}',
                                 b"\xff", b"[" * 40 + b"]" * 40, b'{"inputs": [01]}'])
def test_bad_json_is_400_in_the_protocol_form(daemon, raw):
    status, r = infer(daemon, raw)
    assert status == 400 and isinstance(r["error"], str), r


def test_a_request_over_max_batch_rows_is_refused(tmp_path, numeric_model):
    cfg = tmp_path / "small.conf"
    cfg.write_text("max_batch = 10\nmax_body_bytes = 4K\n")
    with Daemon(numeric_model, config=cfg) as d:
        status, r = infer(d, {"inputs": [record_tensor(rows(11))]})
        assert status == 400 and "1..10" in r["error"], r
        assert infer(d, {"inputs": [record_tensor(rows(10))]})[0] == 200
        status, _, body = d.request("POST", INFER, body=b" " * 5000, headers=JSON)
        assert status == 413 and isinstance(json.loads(body)["error"], str)
        status, _, body = d.request("POST", INFER, body=b"{}",
                                    headers={"Content-Type": "text/plain"})
        assert status == 415 and isinstance(json.loads(body)["error"], str)
        # a protocol client need not name the type; the body is JSON by definition
        body = json.dumps({"inputs": [record_tensor(rows(2))]}).encode()
        assert d.request("POST", INFER, body=body)[0] == 200
        assert d.request("POST", "/score/batch", body=b'{"records":[]}')[0] == 415


def test_infer_needs_the_scoring_token(tmp_path, numeric_model):
    token = tmp_path / "score.token"
    token.write_text("s3cret-scoring-token\n")
    cfg = tmp_path / "guarded.conf"
    cfg.write_text("score_token_file = %s\n" % token)
    with Daemon(numeric_model, config=cfg) as d:
        body = {"inputs": [record_tensor(rows(2))]}
        status, r = infer(d, body)
        assert status == 401 and isinstance(r["error"], str)
        assert infer(d, body, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert infer(d, body, headers={"Authorization": "Bearer s3cret-scoring-token"})[0] == 200
        # probes and metadata stay open, as /health and /model do
        for path in ("/v2", "/v2/health/ready", "/v2/models/aescore"):
            assert d.request("GET", path)[0] == 200


def test_metrics_count_the_protocol_endpoints(daemon):
    infer(daemon, {"inputs": [record_tensor(rows(2))]})
    infer(daemon, {"inputs": []})
    daemon.request("GET", "/v2/health/ready")
    _, _, text = daemon.request("GET", "/metrics")
    text = text.decode()
    assert 'aescore_http_requests_total{endpoint="/v2/models/{name}/infer",code="200"}' in text
    assert 'aescore_http_requests_total{endpoint="/v2/models/{name}/infer",code="400"}' in text
    assert 'aescore_http_requests_total{endpoint="/v2/health/ready",code="200"}' in text


def test_model_name_comes_from_the_config(tmp_path, numeric_model):
    cfg = tmp_path / "named.conf"
    cfg.write_text("model_name = credit-ae\n")
    with Daemon(numeric_model, config=cfg) as d:
        assert d.request("GET", "/v2/models/aescore")[0] == 404
        status, meta = d.get_json("/v2/models/credit-ae")
        assert status == 200 and meta["name"] == "credit-ae"
        status, r = infer(d, {"inputs": [record_tensor(rows(2))]},
                          path="/v2/models/credit-ae/infer")
        assert status == 200 and r["model_name"] == "credit-ae"


def test_a_kept_version_not_served_is_known_and_not_ready(tmp_path):
    model = train_model(tmp_path, name="a.aes", seed=7)
    other = train_model(tmp_path, name="b.aes", seed=8)
    served = str(tmp_path / "served.aes")
    with open(model, "rb") as src, open(served, "wb") as dst:
        dst.write(src.read())
    with Daemon(served) as d:
        _, first = d.get_json("/health")
        os.replace(other, served)
        assert d.post_json("/model/reload", b"")[0] == 200
        _, second = d.get_json("/health")
        assert second["model_id"] != first["model_id"]
        old = "/v2/models/aescore/versions/" + first["model_id"]
        for path in (old, old + "/ready"):
            status, _, body = d.request("GET", path)
            assert status == 400 and "not served" in json.loads(body)["error"], body
        status, r = infer(d, {"inputs": [record_tensor(rows(2))]}, path=old + "/infer")
        assert status == 400 and "rollback" in r["error"]
        assert d.request("GET", "/v2/models/aescore/versions/%d" % first["model_version"])[0] \
            == 404


# ------------------------------------------------------------------------ a mixed model

def write_mixed_csv(path, rows=300, seed=3):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write("amount,months_employed,housing\n")
        for _ in range(rows):
            housing = rnd.choice(["rent"] * 5 + ["own"] * 4 + ["free"])
            f.write("%.2f,%d,%s\n" % (rnd.gauss(1000 if housing == "own" else 400, 50),
                                      rnd.randint(1, 120), housing))
    return path


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("oip-mixed")
    out = str(d / "mixed.aes")
    subprocess.run([AESCORE, "train", "--data", write_mixed_csv(str(d / "train.csv")),
                    "--out", out, "--epochs", "10", "--ensemble", "1", "--quiet"],
                   check=True, timeout=120)
    return out


def test_a_mixed_model_takes_one_tensor_per_field(mixed_model):
    with Daemon(mixed_model) as d:
        _, meta = d.get_json("/v2/models/aescore")
        assert meta["inputs"] == [{"name": "amount", "datatype": "FP64", "shape": [-1]},
                                  {"name": "months_employed", "datatype": "FP64", "shape": [-1]},
                                  {"name": "housing", "datatype": "BYTES", "shape": [-1]}]
        recs = [(410.5, 30, "rent"), (1000.25, 7, "own"), (400, 12, "castle")]
        status, r = infer(d, {"inputs": [
            {"name": "housing", "datatype": "BYTES", "shape": [3], "data": [x[2] for x in recs]},
            {"name": "amount", "datatype": "FP32", "shape": [3], "data": [x[0] for x in recs]},
            {"name": "months_employed", "datatype": "INT64", "shape": [3],
             "data": [x[1] for x in recs]}]})
        assert status == 200, r
        b = batch_scores(d, recs, features=["amount", "months_employed", "housing"])
        assert outputs(r)["instance_score"]["data"] == [x["score"] for x in b["results"]]
        # a categorical field takes BYTES; "record" is not an input of this model
        status, r = infer(d, {"inputs": [record_tensor([[1.0, 2.0, 3.0]])]})
        assert status == 400
        status, r = infer(d, {"inputs": [
            {"name": "housing", "datatype": "FP64", "shape": [1], "data": [1]},
            {"name": "amount", "datatype": "FP64", "shape": [1], "data": [1]},
            {"name": "months_employed", "datatype": "FP64", "shape": [1], "data": [1]}]})
        assert status == 400 and "BYTES" in r["error"]


# ------------------------------------------------------------------------ a spec-only client

class SpecClient:
    """Written from the protocol alone: health, metadata, then inference with the inputs the
    metadata declares, for rows given as {input name: value}."""

    def __init__(self, daemon, model):
        self.d, self.model = daemon, model

    def ready(self):
        return (self.d.request("GET", "/v2/health/live")[0] == 200
                and self.d.request("GET", "/v2/health/ready")[0] == 200
                and self.d.request("GET", "/v2/models/%s/ready" % self.model)[0] == 200)

    def metadata(self):
        status, meta = self.d.get_json("/v2/models/%s" % self.model)
        assert status == 200
        return meta

    def infer(self, columns, n):
        """columns: {input name: data} in the declared shapes; returns {output: data}."""
        inputs = []
        for t in self.metadata()["inputs"]:
            shape = [n if s == -1 else s for s in t["shape"]]
            inputs.append({"name": t["name"], "datatype": t["datatype"], "shape": shape,
                           "data": columns[t["name"]]})
        status, _, body = self.d.request(
            "POST", "/v2/models/%s/infer" % self.model,
            body=json.dumps({"id": "spec-1", "inputs": inputs}).encode(), headers=JSON)
        assert status == 200, body
        reply = json.loads(body)
        assert reply["id"] == "spec-1" and reply["model_name"] == self.model
        return {o["name"]: o["data"] for o in reply["outputs"]}


def test_a_spec_only_client_discovers_the_inputs_and_scores(daemon, mixed_model):
    data = rows(5)
    c = SpecClient(daemon, "aescore")
    assert c.ready()
    (inp,) = c.metadata()["inputs"]
    assert inp["name"] == "record" and inp["shape"] == [-1, len(data[0])]
    out = c.infer({"record": data}, len(data))
    assert out["instance_score"] == [x["score"] for x in batch_scores(daemon, data)["results"]]
    assert len(out["is_outlier"]) == 5 and len(out["threshold"]) == 1
    with Daemon(mixed_model) as d:
        c = SpecClient(d, "aescore")
        assert c.ready()
        sample = {"amount": [400.0, 1010.0], "months_employed": [3.0, 90.0],
                  "housing": ["rent", "own"]}
        names = [t["name"] for t in c.metadata()["inputs"]]
        assert sorted(names) == sorted(sample)
        out = c.infer(sample, 2)
        assert all(isinstance(s, float) for s in out["instance_score"])


def test_without_a_model_probes_say_not_ready_and_infer_is_unavailable(tmp_path):
    cfg = tmp_path / "follower.conf"
    cfg.write_text("role = replica\nwatch_model = yes\n")
    with Daemon(tmp_path / "not-yet.aes", config=cfg) as d:
        assert d.request("GET", "/v2/health/live")[0] == 200
        for path in ("/v2/health/ready", "/v2/models/aescore/ready"):
            status, _, body = d.request("GET", path)
            assert status == 400 and isinstance(json.loads(body)["error"], str), (path, body)
        status, r = infer(d, {"inputs": [record_tensor(rows(2))]})
        assert status == 503 and isinstance(r["error"], str), r
        status, _, body = d.request("GET", "/v2/models/aescore")
        assert status == 503 and isinstance(json.loads(body)["error"], str)
