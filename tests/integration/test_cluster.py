"""Scale-out, black-box: three aescored replicas sharing one model file behind a real nginx
(Debian's), everything on 127.0.0.1.

One replica has role = trainer, the other two role = replica; all three have
watch_model = yes, so all three follow the file (the trainer's own save is a no-op for it).
nginx runs from a generated copy of config/nginx/aescore-upstream.conf, with its own
temporary prefix (pid, logs, temp paths): nothing outside the test's directory is touched.

Checks: clients scoring through nginx while the trainer retrains twice see zero failures
and every replica serves the new model_id within 2 s of the file landing; kill -9 of a
replica under load costs clients nothing (nginx retries scoring on another replica) and
the restarted replica comes back with the current model; a corrupt file renamed over the
model keeps every replica on the old model and shows up in /health and /metrics.
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from daemon_util import Daemon, FEATURES, normal_row, require_tool, train_model, write_csv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(REPO, "config", "nginx", "aescore-upstream.conf")
NGINX = require_tool("nginx", fallback="/usr/sbin/nginx")

N_REPLICAS = 3
CONVERGE_S = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_upstream(template, replicas, trainer, listen):
    """The template with its marked lines filled in: one "# @replica" line per address."""
    out = []
    for line in open(template):
        if line.rstrip().endswith("# @replica"):
            for addr in replicas:
                out.append(re.sub(r"127\.0\.0\.1:\d+", addr, line, count=1))
        elif line.rstrip().endswith("# @trainer"):
            out.append(re.sub(r"127\.0\.0\.1:\d+", trainer, line, count=1))
        elif line.rstrip().endswith("# @listen"):
            out.append(re.sub(r"127\.0\.0\.1:\d+", listen, line, count=1))
        else:
            out.append(line)
    return "".join(out)


class Nginx:
    """nginx in the foreground with a private prefix; the upstream file from the template."""

    def __init__(self, replicas, trainer):
        self.port = free_port()
        # Not under pytest's 0700 tmp tree: when the test runs as root, nginx's workers run
        # as nobody and must reach the temp paths nginx creates for them here.
        self.prefix = tempfile.mkdtemp(prefix="aescore-nginx-")
        os.chmod(self.prefix, 0o755)
        with open(os.path.join(self.prefix, "aescore.conf"), "w") as f:
            f.write(render_upstream(TEMPLATE, replicas, trainer, "127.0.0.1:%d" % self.port))
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""worker_processes 2;
daemon off;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp_body;
    proxy_temp_path tmp_proxy;
    fastcgi_temp_path tmp_fastcgi;
    uwsgi_temp_path tmp_uwsgi;
    scgi_temp_path tmp_scgi;
    include aescore.conf;
}
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix + "/", "-c", self.conf,
                                      "-e", os.path.join(self.prefix, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited:\n" + self.error_log())
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/health/live")
                if c.getresponse().status == 200:
                    c.close()
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not answer:\n" + self.error_log())

    def error_log(self):
        try:
            return open(os.path.join(self.prefix, "error.log")).read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request_json(self, method, path, obj=None, conn=None):
        c = conn or self.connection()
        body = json.dumps(obj).encode() if obj is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        finally:
            if conn is None:
                c.close()


class Load:
    """Client threads scoring through nginx on keep-alive connections until stopped."""

    def __init__(self, nginx, threads=4):
        self.nginx = nginx
        self.n = threads
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.ids = set()
        self.threads = []

    def _run(self, seed):
        rnd = random.Random(seed)
        conn = self.nginx.connection(timeout=10)
        while not self.stop_ev.is_set():
            rec = {"features": dict(zip(FEATURES, normal_row(rnd)))}
            try:
                status, body = self.nginx.request_json("POST", "/score", rec, conn=conn)
            except (OSError, http.client.HTTPException, ValueError) as e:
                with self.lock:
                    self.failures.append(repr(e))
                conn.close()
                conn = self.nginx.connection(timeout=10)
                continue
            with self.lock:
                if status == 200:
                    self.ok += 1
                    self.ids.add(body["model_id"])
                else:
                    self.failures.append((status, body))
        conn.close()

    def __enter__(self):
        for i in range(self.n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def snapshot(self):
        with self.lock:
            return self.ok, list(self.failures)


class Cluster:
    def __init__(self, tmp):
        self.dir = os.path.join(str(tmp), "models")
        os.makedirs(self.dir)
        self.model = train_model(tmp, name="models/model.aes")
        self.data = write_csv(os.path.join(str(tmp), "retrain.csv"), rows=400, seed=11)
        self.ports = [free_port() for _ in range(N_REPLICAS)]
        self.configs = []
        for i in range(N_REPLICAS):
            conf = os.path.join(str(tmp), "replica%d.conf" % i)
            with open(conf, "w") as f:
                # recent_records = 0: the load here repeats a few records, on which the
                # promotion gate would rightly hold the quick models this test trains
                f.write("role = %s\nwatch_model = yes\nthreads = 2\nrecent_records = 0\n"
                        % ("trainer" if i == 0 else "replica"))
            self.configs.append(conf)
        self.replicas = [None] * N_REPLICAS
        self.nginx = None

    def start_replica(self, i):
        d = Daemon(self.model, config=self.configs[i],
                   args=["--listen", "127.0.0.1:%d" % self.ports[i]])
        self.replicas[i] = d.start()
        return d

    def start(self):
        for i in range(N_REPLICAS):
            self.start_replica(i)
        addrs = ["127.0.0.1:%d" % p for p in self.ports]
        self.nginx = Nginx(addrs, addrs[0]).start()
        return self

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        for d in self.replicas:
            if d is not None:
                try:
                    d.stop()
                except Exception:
                    d.kill()

    @property
    def trainer(self):
        return self.replicas[0]

    def health(self, i):
        return self.replicas[i].get_json("/health")

    def retrain_via_nginx(self, seed):
        rnd = random.Random(seed)
        records = [{"features": dict(zip(FEATURES, normal_row(rnd)))} for _ in range(300)]
        status, body = self.nginx.request_json(
            "POST", "/retrain", {"records": records,
                                 "params": {"epochs": 3, "seed": seed, "ensemble": 1}})
        assert status == 202, body
        st = self.trainer.wait_job(body["job_id"])
        assert st["state"] == "succeeded", st
        return st

    def watch_ids(self, old_id):
        """Starts one thread per replica polling its /health until model_id leaves old_id;
        returns a function that waits for them and gives [(wall time seen, new id)]."""
        seen = [None] * N_REPLICAS
        stop = threading.Event()

        def poll(i):
            conn = self.replicas[i].connection(timeout=5)
            while not stop.is_set():
                status, h = self.replicas[i].get_json("/health", conn=conn)
                if status == 200 and h["model_id"] != old_id:
                    seen[i] = (time.time(), h["model_id"])
                    break
                time.sleep(0.002)
            conn.close()

        threads = [threading.Thread(target=poll, args=(i,), daemon=True)
                   for i in range(N_REPLICAS)]
        for t in threads:
            t.start()

        def wait(timeout=10):
            for t in threads:
                t.join(timeout)
            stop.set()
            assert None not in seen, seen
            return seen
        return wait


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.stop()


def file_landed(path):
    """Wall-clock time the model file was renamed into place: rename updates the inode's
    ctime (mtime is the earlier write, before the fsync)."""
    return os.stat(path).st_ctime_ns / 1e9


def test_replicas_converge_on_each_retrain_with_zero_failed_requests(cluster):
    _, first = cluster.health(0)
    ids = [first["model_id"]]
    # Replicas refuse to train, naming the trainer role.
    status, body = cluster.replicas[1].post_json("/retrain", {"records": []})
    assert status == 409 and body["error"]["code"] == "not_trainer", body

    with Load(cluster.nginx) as load:
        time.sleep(0.5)
        for round_ in range(2):
            wait = cluster.watch_ids(ids[-1])
            cluster.retrain_via_nginx(seed=100 + round_)
            status, h = cluster.health(0)
            assert h["model_id"] != ids[-1]
            ids.append(h["model_id"])
            landed = file_landed(cluster.model)
            seen = wait()
            assert all(new_id == h["model_id"] for _, new_id in seen), seen
            lags = [t - landed for t, _ in seen]
            print("round %d: replicas on %s after %s ms (from the rename)"
                  % (round_ + 1, h["model_id"], ", ".join("%.1f" % (x * 1000) for x in lags)))
            assert max(lags) <= CONVERGE_S
        time.sleep(0.3)
    ok, failures = load.snapshot()
    assert failures == [], failures[:5]
    assert ok > 100
    assert set(ids) <= load.ids | {ids[0]}
    assert ids[-1] in load.ids
    # Followers published each new model exactly once (no version storm); the trainer
    # published its own jobs and ignored its own saves.
    for i in range(N_REPLICAS):
        _, h = cluster.health(i)
        assert h["model_version"] == 3, (i, h)
        assert h["watch"]["errors"] == 0, (i, h)


def test_kill_9_under_load_costs_clients_nothing_and_the_restart_rejoins(cluster):
    victim = 2
    with Load(cluster.nginx) as load:
        time.sleep(0.5)
        cluster.replicas[victim].proc.kill()  # SIGKILL
        cluster.replicas[victim].proc.wait()
        time.sleep(1.0)
        # The trainer replaces the model while the victim is down.
        cluster.retrain_via_nginx(seed=200)
        _, current = cluster.health(0)
        time.sleep(0.5)
        cluster.start_replica(victim)
        status, h = cluster.health(victim)
        assert status == 200 and h["model_id"] == current["model_id"], h
        time.sleep(1.0)
    ok, failures = load.snapshot()
    assert failures == [], failures[:5]
    assert ok > 100


def test_corrupt_file_keeps_every_replica_on_the_old_model_and_is_reported(cluster):
    before = [cluster.health(i)[1]["model_id"] for i in range(N_REPLICAS)]
    assert len(set(before)) == 1
    tmp = os.path.join(cluster.dir, ".incoming")
    with open(tmp, "wb") as f:
        f.write(b"AESM" + os.urandom(200))
    landed = time.time()
    os.rename(tmp, cluster.model)  # atomically, as a deploy would
    with Load(cluster.nginx, threads=2) as load:
        for i in range(N_REPLICAS):
            deadline = time.monotonic() + CONVERGE_S
            while True:
                status, h = cluster.health(i)
                assert status == 200, h  # still ready: a good model serves
                if h["watch"]["errors"] >= 1:
                    break
                assert time.monotonic() < deadline, h
                time.sleep(0.01)
            assert h["model_id"] == before[i]
            assert cluster.model in h["watch"]["last_error"]
            assert h["watch"]["last_error_time"] >= landed - 1
            status, _, text = cluster.replicas[i].request("GET", "/metrics")
            text = text.decode()
            assert re.search(r"^aescore_model_watch_errors_total 1$", text, re.M), text
            m = re.search(r"^aescore_model_watch_last_error_timestamp_seconds (\S+)$", text, re.M)
            assert m and float(m.group(1)) >= landed - 1
            assert 'aescore_model_info{model_id="%s"} 1' % before[i] in text
        time.sleep(0.3)
    ok, failures = load.snapshot()
    assert failures == [] and ok > 0
    assert load.ids == {before[0]}
