"""Helpers for black-box tests of the real aescored binary.

Start a daemon on 127.0.0.1 with an ephemeral port, talk HTTP to it with http.client, stop
it with SIGTERM. The build directory comes from $AESCORE_BUILD_DIR (meson sets it; default
./build). Nothing here depends on pytest, so any test module can import it:

    from daemon_util import Daemon, train_model, write_csv

    model = train_model(tmp_path)                 # small synthetic model, ~1 s
    with Daemon(model) as d:                      # waits for /health/live
        status, body = d.post_json("/score", {"values": [0.0] * 8})
    assert d.returncode == 0                      # SIGTERM exit status

Daemon.stderr_text() returns everything the daemon logged so far (a reader thread keeps
draining the pipe, so a chatty daemon never blocks on a full pipe).
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

BUILD_DIR = os.environ.get("AESCORE_BUILD_DIR", os.path.join(os.getcwd(), "build"))
AESCORED = os.path.join(BUILD_DIR, "src", "aescored")
AESCORE = os.path.join(BUILD_DIR, "src", "aescore")

N_FEATURES = 8
FEATURES = ["f%d" % i for i in range(N_FEATURES)]


def write_csv(path, rows=400, seed=7, label=False, features=FEATURES):
    """Writes a synthetic CSV of correlated normal rows (fixed seed) and returns the path.

    Each row is a 2-factor linear mix plus small noise, so an autoencoder with a narrow
    bottleneck learns it and an off-pattern row scores high. label=True adds a "label"
    column of zeros."""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(list(features) + (["label"] if label else [])) + "\n")
        for _ in range(rows):
            f.write(",".join("%.6f" % v for v in normal_row(rnd, len(features)))
                    + (",0" if label else "") + "\n")
    return path


def normal_row(rnd, n=N_FEATURES):
    """One row of the same distribution write_csv uses."""
    a, b = rnd.gauss(0, 1), rnd.gauss(0, 1)
    return [a * (1 + i % 3) + b * (i % 2) + rnd.gauss(0, 0.05) for i in range(n)]


def train_model(tmp_path, name="model.aem", rows=400, seed=7, epochs=5, extra=()):
    """Trains a small model with the CLI on a synthetic CSV; returns the model path."""
    csv = write_csv(os.path.join(str(tmp_path), "train-%d.csv" % seed), rows=rows, seed=seed)
    out = os.path.join(str(tmp_path), name)
    subprocess.run([AESCORE, "train", "--data", csv, "--out", out, "--quiet",
                    "--epochs", str(epochs), "--ensemble", "1", "--seed", str(seed)]
                   + list(extra), check=True, timeout=120)
    return out


class Daemon:
    """A running aescored. Use as a context manager, or call start()/stop()."""

    def __init__(self, model, config=None, args=(), env=None, timeout=20):
        self.model = model
        self.config = config
        self.args = list(args)
        self.env = env
        self.timeout = timeout
        self.proc = None
        self.host = None
        self.port = None
        self.returncode = None
        self._lines = []
        self._lock = threading.Lock()
        self._listening = threading.Event()

    # -- lifecycle --
    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("this Daemon is running already: a second start would leak it")
        cmd = [AESCORED, "--listen", "127.0.0.1:0", "--model", str(self.model)]
        if self.config:
            cmd += ["--config", str(self.config)]
        cmd += self.args
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(self.timeout):
            self.kill()
            raise RuntimeError("aescored did not report 'listening on':\n" + self.stderr_text())
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health/live")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("aescored never answered /health/live:\n" + self.stderr_text())

    def _drain(self):
        pat = re.compile(r"listening on \[?([0-9a-fA-F.:]+?)\]?:(\d+)\s*$")
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            m = pat.search(line)
            if m and not self._listening.is_set():
                self.host, self.port = m.group(1), int(m.group(2))
                self._listening.set()

    def stderr_text(self):
        with self._lock:
            return "\n".join(self._lines)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM, wait, return the exit status."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.returncode = self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP --
    def connection(self, timeout=30):
        """A new keep-alive connection to the daemon."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """One request; returns (status, headers dict with lower-case names, body bytes).
        With conn, reuses that connection (keep-alive)."""
        own = conn is None
        c = conn or self.connection()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def get_json(self, path, headers=None, conn=None):
        """GET path; returns (status, parsed JSON body)."""
        status, _, data = self.request("GET", path, headers=headers, conn=conn)
        return status, json.loads(data)

    def post_json(self, path, obj, headers=None, conn=None, method="POST"):
        """POSTs obj as JSON (or bytes/str as they are); returns (status, parsed JSON body)."""
        if isinstance(obj, (bytes, str)):
            body = obj if isinstance(obj, bytes) else obj.encode()
        else:
            body = json.dumps(obj).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, _, data = self.request(method, path, body=body, headers=h, conn=conn)
        return status, json.loads(data) if data else None

    def wait_job(self, job_id=None, timeout=120, headers=None):
        """Polls GET /retrain until the job (default: the current one) leaves 'running';
        returns the final status object."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, st = self.get_json("/retrain", headers=headers)
            assert status == 200, st
            if st["state"] != "running" and (job_id is None or st["job_id"] == job_id):
                return st
            time.sleep(0.05)
        raise TimeoutError("training job still running after %ss" % timeout)


def under_asan():
    """True when the binaries were built with AddressSanitizer (its quarantine holds freed
    memory, so RSS bounds of the plain build do not apply there)."""
    out = subprocess.run(["ldd", AESCORED], capture_output=True, text=True).stdout
    return "libasan" in out


def require_tool(name, fallback=None):
    """The path of a tool the tests need. Missing, it is an error, never a skip: scripts/
    test.sh installs every one (scripts/lib.sh AE_TEST_PACKAGES)."""
    path = shutil.which(name) or (fallback if fallback and os.path.exists(fallback) else None)
    if path is None:
        raise RuntimeError("%s is not installed: scripts/test.sh installs it (scripts/lib.sh "
                           "AE_TEST_PACKAGES)" % name)
    return path
