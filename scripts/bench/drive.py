#!/usr/bin/python3
"""The HTTP half of scripts/bench.sh (stdlib only; run it through bench.sh, which builds the
binaries and the inputs this expects).

usage: http.py --aescored BIN --bench-json BIN --model MODEL --work DIR --nginx-conf CONF
               [--duration S] [--reps N] [--warmup S] [--conns N] [--batch-conns N]
               [--callgrind] [--out results.json]

Arrangement (the same for every target): the server pinned to CPU 1 (taskset -c 1), wrk to
CPU 0, one wrk thread, keep-alive, N runs of S seconds after a warm-up, medians. Runs of
nginx and aescored alternate so that a machine changing speed hits both alike.
  1. POST /score, one record of 50 named features, 32 connections: aescored and nginx
  2. POST /score/batch, 1,000 such records, 4 connections: aescored and nginx; and the
     cJSON-alone parse rate of the same body (tests/bench/bench_json, on CPU 1)
  3. POST /score while POST /retrain is kept running (a new job as soon as one ends), and
     while the served model is swapped every 0.2 s (POST /model/rollback between two models)
  3b. POST /v2/models/aescore/infer (KServe v2) of the same 1,000 records as one "record"
     tensor [1000, 50], against /score/batch, runs alternating, --batch-conns connections:
     the time per request of each and their ratio (the issue asks for at most 1.3)
  4. start to READY=1 (NOTIFY_SOCKET, a datagram socket of ours), RSS idle and after
     100 retrains of a 200-row CSV
  5. (--callgrind) instructions per /score request in the daemon, all threads counted
Servers are started and stopped by the PID this script holds; nothing else is signalled.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX_PORT = 18080
AE_PORT = 18090
BASELINE_PORT = AE_PORT + 4
CLK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(p, port, what, limit=60):
    t0 = time.time()
    while time.time() - t0 < limit:
        if p.poll() is not None:
            sys.exit("%s exited early (status %s)" % (what, p.returncode))
        if port_open(port):
            return
        time.sleep(0.05)
    sys.exit("%s did not open port %d" % (what, port))


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def cpu_ticks(pids):
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            t += int(v[11]) + int(v[12])
        except (OSError, IndexError, ValueError):
            pass
    return t


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """One server process: pinned to CPU 1, stopped by its PID."""

    def __init__(self, name, cmd, port, env=None, stop_sig=signal.SIGTERM):
        self.name, self.port, self.stop_sig = name, port, stop_sig
        if port_open(port):
            sys.exit("port %d is in use; not starting %s" % (port, name))
        self.log = open(os.path.join(ARGS.work, "server_%s.log" % name), "w")
        self.p = subprocess.Popen(["taskset", "-c", "1"] + cmd, stdout=self.log,
                                  stderr=self.log, env=env)
        wait_port(self.p, port, name)

    def pids(self):
        kids = children(self.p.pid)
        return [self.p.pid] + kids + [g for k in kids for g in children(k)]

    def stop(self):
        kids = children(self.p.pid)
        try:
            self.p.send_signal(self.stop_sig)
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for pid in kids:  # only the workers this server started
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.log.close()


def start_nginx():
    rundir = tempfile.mkdtemp(prefix="nginx-", dir=ARGS.work)
    return Server("nginx", ["nginx", "-p", rundir, "-c", os.path.abspath(ARGS.nginx_conf),
                            "-e", "stderr"], NGINX_PORT, stop_sig=signal.SIGQUIT)


def aescored_conf(port, model=None, name="aescored"):
    path = os.path.join(ARGS.work, name + ".conf")
    with open(path, "w") as f:
        f.write("listen = 127.0.0.1:%d\nmodel = %s\nlog_level = notice\n"
                % (port, model or ARGS.served_model))
    return path


def start_aescored(name="aescored", env=None):
    return Server(name, [ARGS.aescored, "--config", aescored_conf(AE_PORT)], AE_PORT, env=env)


def start_baseline():
    """--baseline-aescored: an earlier build serving its own copy of the bench model."""
    model = os.path.join(ARGS.work, "baseline.aes")
    shutil.copyfile(ARGS.model, model)
    conf = aescored_conf(BASELINE_PORT, model, "baseline")
    return Server("baseline", [ARGS.baseline_aescored, "--config", conf], BASELINE_PORT)


def credit_vs_numeric(ae):
    """POST /score of the README's credit record (20 numbers, 3 text fields) to a second
    daemon serving a model of the bundled credit sample, alternating with the numeric
    record to the first: the text fields' cost on the same machine in the same run."""
    port = AE_PORT + 2
    credit = Server("aescored-credit", [ARGS.aescored, "--config",
                                        aescored_conf(port, ARGS.credit_model, "credit")], port)
    try:
        check(port, "/score", ARGS.credit_body)
        res = alternate([("numeric", ae, AE_PORT, ARGS.single),
                         ("credit", credit, port, ARGS.credit_body)], "/score", None,
                        ARGS.conns)
    finally:
        credit.stop()
    res["ratio"] = res["credit"]["rps"] / res["numeric"]["rps"]
    res["cpu_ratio"] = res["numeric"]["cpu_us_per_req"] / res["credit"]["cpu_us_per_req"]
    return res


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # busy = all but idle and iowait


def run_wrk(port, body, path, conns, seconds, server=None):
    cmd = ["taskset", "-c", "0", "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
           "--timeout", "10s", "-s", os.path.join(HERE, "post.lua"),
           "http://127.0.0.1:%d" % port]
    env = dict(os.environ, BODY_FILE=body, WRK_PATH=path)
    pids = server.pids() if server else []
    ru0 = os.times()
    c0, m0, t0 = cpu_ticks(pids), machine_ticks(), time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    c1, m1, dt = cpu_ticks(pids), machine_ticks(), time.time() - t0
    ru1 = os.times()
    wrk_s = (ru1.children_user + ru1.children_system - ru0.children_user
             - ru0.children_system)
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            r = json.loads(line[9:])
            r["server_cpu_s"] = (c1 - c0) / CLK
            r["server_cpu_pct"] = 100.0 * (c1 - c0) / CLK / dt
            # CPU that neither the server nor wrk used, in % of the two cores: above a few
            # per cent something else on the machine disturbed the run
            r["others_cpu_pct"] = max(0.0, 100.0 * ((m1 - m0 - c1 + c0) / CLK - wrk_s)
                                      / dt / os.cpu_count())
            return r
    raise RuntimeError("wrk printed no WRK_JSON line:\n" + out)


def post(port, path, body, ctype="application/json", method="POST", timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": ctype} if body else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def check(port, path, body, expect=200):
    status, data = post(port, path, open(body, "rb").read())
    if status != expect:
        sys.exit("%s -> %d: %s" % (path, status, data[:300]))
    return data


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def summary(runs):
    return {
        "rps": med(runs, "rps"), "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": med(runs, "p50_us") / 1e3, "p99_ms": med(runs, "p99_us") / 1e3,
        "errors": sum(r["errors"] for r in runs),
        "cpu_us_per_req": statistics.median(
            1e6 * r["server_cpu_s"] / max(1, r["requests"]) for r in runs),
        "server_cpu_pct": med(runs, "server_cpu_pct"),
        "others_cpu_pct": max(r["others_cpu_pct"] for r in runs),
        "body_bytes": runs[0]["body_bytes"], "runs": runs,
    }


def alternate(targets, path, body, conns):
    """targets: [(name, server, port[, body])] (a target's own body, else body); warm-up,
    then ARGS.reps rounds of one run each."""
    res = {t[0]: [] for t in targets}
    for t in targets:
        run_wrk(t[2], t[3] if len(t) > 3 else body, path, conns, ARGS.warmup)
    for i in range(ARGS.reps):
        for t in targets:
            name, srv, port = t[:3]
            r = run_wrk(port, t[3] if len(t) > 3 else body, path, conns, ARGS.duration, srv)
            log("%-16s run %d: %9.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d  "
                "server %.0f%% CPU, others %.0f%%" % (
                    name, i + 1, r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3,
                    r["errors"], r["server_cpu_pct"], r["others_cpu_pct"]))
            res[name].append(r)
    return {k: summary(v) for k, v in res.items()}


def infer_body():
    """The batch body's records as one KServe v2 "record" tensor, in the served model's field
    order (GET /model); written beside the batch body."""
    path = os.path.join(ARGS.work, "body_infer.json")
    fields = json.loads(post(AE_PORT, "/model", None, method="GET")[1])["features"]
    records = json.load(open(ARGS.batch))["records"]
    data = [[r["features"][f] for f in fields] for r in records]
    with open(path, "w") as f:
        json.dump({"id": "bench", "inputs": [{"name": "record", "datatype": "FP64",
                                              "shape": [len(data), len(fields)],
                                              "data": data}]}, f, separators=(",", ":"))
    return path


def oip_vs_batch(srv):
    """/v2/models/aescore/infer and /score/batch of the same records on one server, runs
    alternating; the ratio of the time per request (1 / req/s at the same connections)."""
    body = infer_body()
    check(AE_PORT, "/v2/models/aescore/infer", body)
    targets = [("score/batch", "/score/batch", ARGS.batch),
               ("v2 infer", "/v2/models/aescore/infer", body)]
    res = {name: [] for name, _, _ in targets}
    for name, path, b in targets:
        run_wrk(AE_PORT, b, path, ARGS.batch_conns, ARGS.warmup)
    for i in range(ARGS.reps):
        for name, path, b in targets:
            r = run_wrk(AE_PORT, b, path, ARGS.batch_conns, ARGS.duration, srv)
            log("%-16s run %d: %9.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d" % (
                name, i + 1, r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["errors"]))
            res[name].append(r)
    out = {k: summary(v) for k, v in res.items()}
    out["time_ratio"] = out["score/batch"]["rps"] / out["v2 infer"]["rps"]
    return out


def thread_nice(pid):
    """{thread name: nice} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
            name = s[s.index("(") + 1:s.rindex(")")]
            out["%s/%s" % (name, tid)] = int(s.rsplit(")", 1)[1].split()[16])
        except (OSError, ValueError):
            pass
    return out


class RetrainLoop(threading.Thread):
    """Keeps a training job running: POST /retrain (the 8,000-row CSV, default parameters)
    again as soon as GET /retrain says the last job ended."""

    def __init__(self, port, csv):
        super().__init__(daemon=True)
        self.port, self.body = port, open(csv, "rb").read()
        self.stopping = threading.Event()
        self.started_jobs, self.nices = 0, {}

    def running(self):
        status, data = post(self.port, "/retrain", None, method="GET")
        return status == 200 and json.loads(data).get("state") == "running"

    def run(self):
        while not self.stopping.is_set():
            if not self.running():
                status, data = post(self.port, "/retrain", self.body, "text/csv")
                if status not in (202, 409):
                    sys.exit("POST /retrain -> %d: %s" % (status, data[:300]))
                self.started_jobs += status == 202
            self.stopping.wait(0.05)

    def stop(self):
        self.stopping.set()
        self.join()
        post(self.port, "/retrain", None, method="DELETE")
        t0 = time.time()
        while self.running() and time.time() - t0 < 30:
            time.sleep(0.05)


def during_training(srv):
    loop = RetrainLoop(AE_PORT, ARGS.retrain_csv)
    loop.start()
    t0 = time.time()
    while not loop.running() and time.time() - t0 < 30:
        time.sleep(0.05)
    nices = thread_nice(srv.p.pid)
    runs = []
    run_wrk(AE_PORT, ARGS.single, "/score", ARGS.conns, ARGS.warmup)
    for i in range(ARGS.reps):
        r = run_wrk(AE_PORT, ARGS.single, "/score", ARGS.conns, ARGS.duration, srv)
        log("%-16s run %d: %9.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d  "
            "server %.0f%% CPU, others %.0f%%" % (
                "aescored+train", i + 1, r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3,
                r["errors"], r["server_cpu_pct"], r["others_cpu_pct"]))
        runs.append(r)
    loop.stop()
    s = summary(runs)
    s["jobs_started"] = loop.started_jobs
    s["thread_nice"] = nices
    return s


class SwapLoop(threading.Thread):
    """Swaps the served model every ARGS.swap_interval seconds: POST /model/rollback goes
    back to the model served before, which then is the other one, so the two alternate.
    Each call's latency is kept."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.latencies = port, []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            t0 = time.time()
            status, data = post(self.port, "/model/rollback", None)
            if status != 200:
                sys.exit("POST /model/rollback -> %d: %s" % (status, data[:300]))
            self.latencies.append(time.time() - t0)
            self.stopping.wait(ARGS.swap_interval)

    def stop(self):
        self.stopping.set()
        self.join()


def second_model():
    """A second model in the history (a retrain; promoted by hand if its gates held it)."""
    status, data = post(AE_PORT, "/retrain?epochs=2&ensemble=1",
                        open(ARGS.small_csv, "rb").read(), "text/csv")
    if status != 202:
        sys.exit("POST /retrain -> %d: %s" % (status, data[:300]))
    while True:
        st = json.loads(post(AE_PORT, "/retrain", None, method="GET")[1])
        if st["state"] != "running":
            break
        time.sleep(0.05)
    if st["state"] == "held":
        post(AE_PORT, "/model/promote", None)
    elif st["state"] != "succeeded":
        sys.exit("the second model's job ended %s: %s" % (st["state"], st["error"]))


def during_swaps(srv):
    """POST /score while the served model is swapped (promotion and rollback take the same
    path: file, slot, history) every ARGS.swap_interval s."""
    second_model()
    loop = SwapLoop(AE_PORT)
    run_wrk(AE_PORT, ARGS.single, "/score", ARGS.conns, ARGS.warmup)
    loop.start()
    runs = []
    for i in range(ARGS.reps):
        r = run_wrk(AE_PORT, ARGS.single, "/score", ARGS.conns, ARGS.duration, srv)
        log("%-16s run %d: %9.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d" % (
            "aescored+swaps", i + 1, r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3,
            r["errors"]))
        runs.append(r)
    loop.stop()
    s = summary(runs)
    lat = sorted(loop.latencies)
    s["swaps"] = len(lat)
    s["swap_ms_median"] = 1e3 * statistics.median(lat)
    s["swap_ms_max"] = 1e3 * lat[-1]
    return s


def retrain_state():
    return json.loads(post(AE_PORT, "/retrain", None, method="GET")[1])


def budget(srv):
    """The training budget: how long a refused oversized job takes to answer and the RSS
    after ten of them; then DELETE /retrain's latency (until GET /retrain no longer says
    running) for two shapes within the budget, half a second into their first epoch."""
    small = open(ARGS.small_csv, "rb").read()
    huge = "/retrain?ensemble=1&hidden=" + ",".join(["4096"] * 15)
    refusals = []
    for _ in range(10):
        t0 = time.monotonic()
        status, data = post(AE_PORT, huge, small, "text/csv")
        refusals.append(1e3 * (time.monotonic() - t0))
        if status != 422:
            sys.exit("POST %s -> %d, not 422: %s" % (huge, status, data[:300]))
    res = {"refusal_ms_median": statistics.median(refusals), "refusal_ms_max": max(refusals),
           "rss_after_refusals_kib": rss_kib(srv.p.pid), "cancel": {}}
    rows = open(ARGS.retrain_csv, "rb").read()
    for name, query in (("2 x 1400, batch 4096", "hidden=1400,1400&batch=4096"),
                        ("8 x 700, batch 16", "hidden=" + ",".join(["700"] * 8) + "&batch=16")):
        lat = []
        for _ in range(5):
            status, data = post(AE_PORT, "/retrain?ensemble=1&epochs=5&" + query, rows,
                                "text/csv")
            if status != 202:
                sys.exit("POST /retrain?%s -> %d: %s" % (query, status, data[:300]))
            time.sleep(0.5)
            t0 = time.monotonic()
            post(AE_PORT, "/retrain", None, method="DELETE")
            while retrain_state()["state"] == "running":
                time.sleep(0.001)
            lat.append(1e3 * (time.monotonic() - t0))
        res["cancel"][name] = {"ms_median": statistics.median(lat), "ms_max": max(lat)}
        log("cancel %s: median %.1f ms, max %.1f ms" % (name, statistics.median(lat), max(lat)))
    return res


def cjson_ceiling():
    rates = []
    for _ in range(ARGS.reps):
        out = subprocess.run(["taskset", "-c", "1", ARGS.bench_json, ARGS.batch,
                              str(max(1, ARGS.duration // 3))],
                             capture_output=True, text=True, check=True).stdout
        rates.append(json.loads(out.splitlines()[-1]))
    return {"records_per_s": med(rates, "records_per_s"), "mb_per_s": med(rates, "mb_per_s")}


def ready_and_rss():
    """Start to READY=1 (median of several starts) and RSS idle / after 100 retrains."""
    times = []
    sock_path = os.path.join(ARGS.work, "notify.sock")
    for i in range(ARGS.starts):
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(sock_path)
        ns.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        conf = aescored_conf(AE_PORT)
        logf = open(os.path.join(ARGS.work, "server_ready.log"), "w")
        t0 = time.monotonic()
        p = subprocess.Popen(["taskset", "-c", "1", ARGS.aescored, "--config", conf],
                             stdout=logf, stderr=logf, env=env)
        ready = None
        while ready is None:
            msg = ns.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                ready = time.monotonic() - t0
        times.append(ready * 1e3)
        ns.close()
        last = i == ARGS.starts - 1
        if last:
            idle, after = rss_probe(p.pid)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        logf.close()
    return {"ready_ms": statistics.median(times), "ready_ms_all": times,
            "rss_idle_kib": idle, "rss_after_retrains_kib": after}


def rss_probe(pid):
    body = open(ARGS.single, "rb").read()
    c = http.client.HTTPConnection("127.0.0.1", AE_PORT, timeout=30)
    for _ in range(200):
        c.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    c.close()
    idle = rss_kib(pid)
    small = open(ARGS.small_csv, "rb").read()
    loop = RetrainLoop(AE_PORT, ARGS.small_csv)
    for i in range(ARGS.retrains):
        status, data = post(AE_PORT, "/retrain?epochs=2&ensemble=1", small, "text/csv")
        if status != 202:
            sys.exit("POST /retrain -> %d: %s" % (status, data[:300]))
        while loop.running():
            time.sleep(0.005)
    after = rss_kib(pid)
    log("RSS idle %.1f MiB, after %d retrains %.1f MiB" % (idle / 1024, ARGS.retrains,
                                                          after / 1024))
    return idle, after


def callgrind_per_request():
    """Instructions per POST /score in the whole daemon: the difference of two runs that
    differ only in the number of requests, divided by that difference."""
    body = open(ARGS.single, "rb").read()

    def count(n):
        logp = os.path.join(ARGS.work, "callgrind.log")
        p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              "--log-file=" + logp, ARGS.aescored, "--config",
                              aescored_conf(AE_PORT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(p, AE_PORT, "aescored under callgrind", 120)
        c = http.client.HTTPConnection("127.0.0.1", AE_PORT, timeout=60)
        for _ in range(n):
            c.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
        c.close()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
        for line in open(logp):
            if "refs:" in line:
                return int(line.split()[-1].replace(",", ""))
        sys.exit("no instruction count in " + logp)

    a, b = count(200), count(2200)
    return (b - a) / 2000.0


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--aescored", required=True)
    ap.add_argument("--bench-json", required=True)
    ap.add_argument("--model", required=True, help="the served model file (copied)")
    ap.add_argument("--work", required=True, help="holds gen.py's files; scratch")
    ap.add_argument("--nginx-conf", required=True)
    ap.add_argument("--credit-model", help="a model of the credit sample (section credit)")
    ap.add_argument("--credit-body", help="a credit record with text fields for it")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--batch-conns", type=int, default=4)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--retrains", type=int, default=100)
    ap.add_argument("--swap-interval", type=float, default=0.2)
    ap.add_argument("--only",
                    default="single,credit,batch,oip,train,swap,budget,ready,callgrind")
    ap.add_argument("--out", help="write every figure as JSON here")
    ap.add_argument("--baseline-aescored",
                    help="an earlier aescored, alternated with the others in section single")
    ap.add_argument("--baseline-name", default="", help="how the report names it")
    ARGS = ap.parse_args()
    w = ARGS.work
    ARGS.single, ARGS.batch = os.path.join(w, "body_single.json"), os.path.join(w,
                                                                               "body_batch.json")
    ARGS.retrain_csv, ARGS.small_csv = os.path.join(w, "retrain.csv"), os.path.join(w,
                                                                                  "small.csv")
    # retraining replaces the model file: serve a copy, keep the original
    ARGS.served_model = os.path.join(w, "served.aes")
    only = ARGS.only.split(",")
    res = {"arrangement": "server taskset -c 1, wrk taskset -c 0 -t1, keep-alive, "
           "%d x %d s after %d s warm-up, medians" % (ARGS.reps, ARGS.duration, ARGS.warmup)}

    def fresh_model():
        shutil.copyfile(ARGS.model, ARGS.served_model)

    fresh_model()
    ngx = start_nginx() if "single" in only or "batch" in only else None
    ae = start_aescored()
    try:
        check(AE_PORT, "/score", ARGS.single)
        check(AE_PORT, "/score/batch", ARGS.batch)
        if "single" in only:
            log("POST /score, 1 record, %d connections" % ARGS.conns)
            targets = [("nginx", ngx, NGINX_PORT), ("aescored", ae, AE_PORT)]
            base = start_baseline() if ARGS.baseline_aescored else None
            try:
                if base:
                    targets.insert(1, ("baseline", base, BASELINE_PORT))
                res["single"] = alternate(targets, "/score", ARGS.single, ARGS.conns)
            finally:
                if base:
                    base.stop()
        if "credit" in only:
            log("POST /score of a credit record with text fields against the numeric record")
            res["credit"] = credit_vs_numeric(ae)
        if "batch" in only:
            log("POST /score/batch, 1,000 records, %d connections" % ARGS.batch_conns)
            res["batch"] = alternate([("nginx", ngx, NGINX_PORT), ("aescored", ae, AE_PORT)],
                                     "/score/batch", ARGS.batch, ARGS.batch_conns)
            log("cJSON alone parsing the batch body (CPU 1)")
            res["cjson"] = cjson_ceiling()
        if "oip" in only:
            log("POST /v2/models/aescore/infer against /score/batch, 1,000 records, %d "
                "connections" % ARGS.batch_conns)
            res["oip"] = oip_vs_batch(ae)
        if "train" in only:
            log("POST /score while POST /retrain runs continuously")
            res["training"] = during_training(ae)
        if "swap" in only:
            log("POST /score while the model is swapped every %.1f s" % ARGS.swap_interval)
            res["swaps"] = during_swaps(ae)
        if "budget" in only:
            log("the training budget: refusals, then DELETE /retrain of large networks")
            res["budget"] = budget(ae)
    finally:
        ae.stop()
        if ngx:
            ngx.stop()
    if "ready" in only:
        log("start to READY=1, RSS idle and after %d retrains" % ARGS.retrains)
        fresh_model()
        res["ready"] = ready_and_rss()
    if "callgrind" in only:
        log("instructions per POST /score under callgrind (the whole daemon)")
        fresh_model()
        res["instructions_per_request"] = callgrind_per_request()
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(res, f, indent=1)
    report(res)


def print_targets(res, names):
    """A table of alternated targets' summaries: req/s, latency, errors, CPU per request."""
    print("%-22s %10s %9s %9s %7s %12s" % ("target", "req/s", "p50 ms", "p99 ms", "errors",
                                          "CPU us/req"))
    for name in names:
        s = res[name]
        print("%-22s %10.0f %9.2f %9.2f %7d %12.1f" % (name, s["rps"], s["p50_ms"], s["p99_ms"],
                                                      s["errors"], s["cpu_us_per_req"]))


def report(res):
    print("arrangement: " + res["arrangement"])
    others = [s["others_cpu_pct"] for k in ("single", "credit", "batch", "oip")
              for s in res.get(k, {}).values() if isinstance(s, dict)]
    if "training" in res:
        others.append(res["training"]["others_cpu_pct"])
    if others and max(others) > 5:
        print("WARNING: other processes used up to %.0f%% of the machine during runs: the "
              "req/s figures are disturbed; CPU us/req and the ratios hold better" % max(others))
    if "single" in res:
        n, a = res["single"]["nginx"], res["single"]["aescored"]
        print("\nPOST /score, one record of 50 named features, %d connections" % ARGS.conns)
        print("%-22s %10s %9s %9s %7s %12s %8s" % ("target", "req/s", "p50 ms", "p99 ms",
                                                   "errors", "CPU us/req", "/ nginx"))
        rows = [("nginx (fixed reply)", n), ("aescored", a)]
        if "baseline" in res["single"]:
            rows.insert(1, ("baseline " + ARGS.baseline_name, res["single"]["baseline"]))
        for name, s in rows:
            print("%-22s %10.0f %9.2f %9.2f %7d %12.1f %8.2f" % (
                name, s["rps"], s["p50_ms"], s["p99_ms"], s["errors"], s["cpu_us_per_req"],
                s["rps"] / n["rps"]))
        print("CPU per request, nginx / aescored: %.2f (the ratio the speed target is set in)"
              % (n["cpu_us_per_req"] / a["cpu_us_per_req"]))
    if "credit" in res:
        c = res["credit"]
        print("\nPOST /score, the README's credit record (3 text fields) against the numeric "
              "record, alternating, %d connections" % ARGS.conns)
        print_targets(c, ("numeric", "credit"))
        print("credit / numeric: %.2f req/s, %.2f CPU per request (numeric / credit; at least "
              "0.9)" % (c["ratio"], c["cpu_ratio"]))
    if "batch" in res:
        n, a, cj = res["batch"]["nginx"], res["batch"]["aescored"], res["cjson"]
        mb = a["body_bytes"] / 1e6
        print("\nPOST /score/batch, 1,000 records (%d bytes), %d connections"
              % (a["body_bytes"], ARGS.batch_conns))
        print("%-22s %10s %10s %9s %9s %7s" % ("target", "records/s", "body MB/s", "p50 ms",
                                              "p99 ms", "errors"))
        for name, s in (("nginx (fixed reply)", n), ("aescored", a)):
            print("%-22s %10.0f %10.1f %9.2f %9.2f %7d" % (
                name, 1000 * s["rps"], mb * s["rps"], s["p50_ms"], s["p99_ms"], s["errors"]))
        print("%-22s %10.0f %10.1f" % ("cJSON alone (parse)", cj["records_per_s"],
                                       cj["mb_per_s"]))
        print("aescored / cJSON alone %10.2f" % (1000 * a["rps"] / cj["records_per_s"]))
    if "oip" in res:
        o = res["oip"]
        print("\nPOST /v2/models/aescore/infer vs /score/batch, the same 1,000 records, %d "
              "connections" % ARGS.batch_conns)
        print_targets(o, ("score/batch", "v2 infer"))
        print("infer / batch time per request %6.2f (at most 1.3)" % o["time_ratio"])
    if "training" in res:
        t = res["training"]
        print("\nPOST /score while retraining flat out (%d job(s) started)" % t["jobs_started"])
        line = "aescored + training     %10.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d" % (
            t["rps"], t["p50_ms"], t["p99_ms"], t["errors"])
        if "single" in res:
            line += "  / idle %.2f" % (t["rps"] / res["single"]["aescored"]["rps"])
        print(line)
        print("thread nice values: " + ", ".join(
            "%s %d" % kv for kv in sorted(t["thread_nice"].items())))
    if "swaps" in res:
        t = res["swaps"]
        print("\nPOST /score while the served model is swapped every %.1f s (%d swaps by "
              "POST /model/rollback)" % (ARGS.swap_interval, t["swaps"]))
        line = "aescored + swaps        %10.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d" % (
            t["rps"], t["p50_ms"], t["p99_ms"], t["errors"])
        if "single" in res:
            line += "  / idle %.2f (idle p99 %.2f ms)" % (
                t["rps"] / res["single"]["aescored"]["rps"], res["single"]["aescored"]["p99_ms"])
        print(line)
        print("swap latency: median %.1f ms, max %.1f ms (file saved and fsynced, slot, "
              "history index)" % (t["swap_ms_median"], t["swap_ms_max"]))
    if "budget" in res:
        b = res["budget"]
        print("\nPOST /retrain of a 15 x 4096 network: 422 over_budget in %.1f ms (median of 10, "
              "max %.1f), RSS after %.1f MiB" % (b["refusal_ms_median"], b["refusal_ms_max"],
                                                 b["rss_after_refusals_kib"] / 1024))
        for name, c in b["cancel"].items():
            print("DELETE /retrain of %-22s %6.1f ms to take effect (median of 5, max %.1f)"
                  % (name + ":", c["ms_median"], c["ms_max"]))
    if "ready" in res:
        r = res["ready"]
        print("\nstart to READY=1 with a model file %8.1f ms (median of %d)"
              % (r["ready_ms"], len(r["ready_ms_all"])))
        print("RSS idle (after 200 requests)      %8.1f MiB" % (r["rss_idle_kib"] / 1024))
        print("RSS after %d retrains             %8.1f MiB (growth %+.2f MiB)" % (
            ARGS.retrains, r["rss_after_retrains_kib"] / 1024,
            (r["rss_after_retrains_kib"] - r["rss_idle_kib"]) / 1024))
    if "instructions_per_request" in res:
        print("instructions per POST /score      %8.0f   callgrind, whole daemon"
              % res["instructions_per_request"])


if __name__ == "__main__":
    main()
