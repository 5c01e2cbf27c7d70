"""The training budget against the real daemon and CLI: a job whose network or memory is
over max_train_parameters / max_train_memory is refused before anything of its size is
allocated (422 over_budget, naming the estimate and the limit), and DELETE /retrain stops a
job within 100 ms whatever its layer sizes.

The parameter counts are checked against the autoencoder's shape computed here: n inputs ->
hidden... -> n outputs, each layer in*out weights + out biases, times the members.
"""

import os
import random
import subprocess
import time

import pytest

from daemon_util import (AESCORE, FEATURES, N_FEATURES, Daemon, normal_row, train_model,
                         under_asan, write_csv)


def network_parameters(n_in, hidden, members=1):
    sizes = [n_in] + list(hidden) + [n_in]
    return members * sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def retrain_body(rows=300, params=None, seed=11):
    rnd = random.Random(seed)
    recs = [{"features": dict(zip(FEATURES, normal_row(rnd)))} for _ in range(rows)]
    return {"records": recs, "params": params or {}}


def start_daemon(tmp_path, **keys):
    model = train_model(tmp_path)
    path = os.path.join(str(tmp_path), "budget.conf")
    keys.setdefault("recent_records", 0)
    with open(path, "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in keys.items()))
    return Daemon(model, config=path)


def test_an_oversized_network_is_refused_at_once_without_memory(tmp_path):
    hidden = [4096] * 15  # about 235 million parameters: gigabytes if it were allocated
    with start_daemon(tmp_path) as d:
        t0 = time.monotonic()
        status, r = d.post_json("/retrain", retrain_body(params={"hidden": hidden,
                                                                 "ensemble": 1}))
        elapsed = time.monotonic() - t0
        assert status == 422, r
        err = r["error"]
        assert err["code"] == "over_budget"
        assert err["estimate"]["parameters"] == network_parameters(N_FEATURES, hidden)
        assert err["limit"] == {"parameters": 4000000, "memory_bytes": 1024 << 20}
        assert "max_train_parameters = 4000000" in err["message"]
        assert str(network_parameters(N_FEATURES, hidden)) in err["message"]
        assert elapsed < 1.0
        assert rss_bytes(d.proc.pid) < 64 << 20
        # the ensemble counts: 16 members of a network of 300,000 parameters are too many
        status, r = d.post_json("/retrain", retrain_body(
            params={"hidden": [540, 540], "ensemble": 16}))
        assert status == 422 and r["error"]["code"] == "over_budget", r
        assert r["error"]["estimate"]["parameters"] == network_parameters(
            N_FEATURES, [540, 540], 16)
        # nothing started: no job, and the served model is untouched
        _, st = d.get_json("/retrain")
        assert st["state"] == "idle" or st["job_id"] == 0, st
        status, r = d.post_json("/retrain", retrain_body(params={"epochs": 2, "ensemble": 1}))
        assert status == 202, r


def test_memory_over_max_train_memory_is_refused_with_the_estimate(tmp_path):
    with start_daemon(tmp_path, max_train_memory="1M") as d:
        # two layers of 1400: 4 copies (weights, gradient, Adam's two moments) of about 2
        # million floats are 32 MB, more than 1 MiB
        status, r = d.post_json("/retrain", retrain_body(params={"hidden": [1400, 1400],
                                                                 "ensemble": 1}))
        assert status == 422, r
        err = r["error"]
        assert err["code"] == "over_budget"
        assert err["limit"]["memory_bytes"] == 1 << 20
        assert err["estimate"]["memory_bytes"] > 4 * 4 * network_parameters(
            N_FEATURES, [1400, 1400])
        assert "MiB at its peak, over max_train_memory = 1M;" in err["message"]
        # a small job fits: the default network on 300 rows takes a few hundred KB
        status, r = d.post_json("/retrain", retrain_body(params={"hidden": [4], "epochs": 1,
                                                                 "ensemble": 1}))
        assert status == 202, r


def test_no_limit_with_zero(tmp_path):
    with start_daemon(tmp_path, max_train_parameters=0, max_train_memory=0) as d:
        status, r = d.post_json("/retrain", retrain_body(params={"hidden": [4096] * 2,
                                                                 "epochs": 1}))
        assert status == 202, r
        assert d.request("DELETE", "/retrain")[0] == 202
        assert d.wait_job()["state"] == "cancelled"


def cancel_latency(d, params, rows):
    status, r = d.post_json("/retrain", retrain_body(rows=rows, params=params))
    assert status == 202, r
    time.sleep(0.5)  # well inside a batch, an epoch, or the threshold's scoring
    _, st = d.get_json("/retrain")
    assert st["state"] == "running", st
    t0 = time.monotonic()
    status, _, _ = d.request("DELETE", "/retrain")
    assert status == 202
    while True:
        _, st = d.get_json("/retrain")
        if st["state"] != "running":
            break
        time.sleep(0.002)
    assert st["state"] == "cancelled", st
    return time.monotonic() - t0


@pytest.mark.parametrize("params", [
    # one batch of 4096 rows of a 4-million-parameter network is minutes of work
    {"hidden": [1400, 1400], "batch": 4096, "epochs": 5},
    # many layers of small batches
    {"hidden": [700] * 8, "batch": 16, "epochs": 5},
], ids=["wide-batch", "deep"])
def test_delete_takes_effect_within_100_ms_whatever_the_layer_sizes(tmp_path, params):
    # sanitizer builds run unoptimised and instrumented: the bound scales with them
    bound = 0.1 if not under_asan() else 0.5
    with start_daemon(tmp_path) as d:
        latencies = [cancel_latency(d, dict(params, ensemble=1), rows=4096) for _ in range(3)]
        assert max(latencies) < bound, latencies


def test_the_cli_refuses_the_same_way_unless_told_otherwise(tmp_path):
    csv = write_csv(os.path.join(str(tmp_path), "train.csv"), rows=200)
    out = os.path.join(str(tmp_path), "big.aes")
    args = [AESCORE, "train", "--data", csv, "--out", out, "--quiet", "--ensemble", "1",
            "--epochs", "1"]
    t0 = time.monotonic()
    r = subprocess.run(args + ["--hidden", "4096,4096,4096"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert time.monotonic() - t0 < 1.0
    n = network_parameters(N_FEATURES, [4096] * 3)
    assert ("%s: the model would have %d parameters, over max_train_parameters = 4000000"
            % (csv, n)) in r.stderr
    assert "--max-train-parameters" in r.stderr
    assert not os.path.exists(out)
    # told otherwise: a raised limit trains (a smaller network, to keep this quick)
    # 3.27 million parameters: within the default, over a limit of 3M (3 x 2^20)
    r = subprocess.run(args + ["--hidden", "1800,1800", "--max-train-parameters", "3M"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "over max_train_parameters = 3145728" in r.stderr, r.stderr
    r = subprocess.run(args + ["--hidden", "1800,1800", "--max-train-parameters", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(out)
    r = subprocess.run(args + ["--max-train-memory", "12X"], capture_output=True, text=True)
    assert r.returncode == 2 and "--max-train-memory: expected a number" in r.stderr


def test_bootstrap_data_over_budget_is_a_clear_fatal_error(tmp_path):
    csv = write_csv(os.path.join(str(tmp_path), "boot.csv"), rows=300)
    conf = os.path.join(str(tmp_path), "boot.conf")
    model = os.path.join(str(tmp_path), "missing.aes")
    with open(conf, "w") as f:
        f.write("bootstrap_data = %s\nmax_train_memory = 64K\n" % csv)
    d = Daemon(model, config=conf)
    with pytest.raises(Exception):
        d.start()
    d.proc.wait(timeout=30)
    assert d.proc.returncode != 0
    assert "MiB at its peak, over max_train_memory = 64K" in d.stderr_text()
    assert not os.path.exists(model)
