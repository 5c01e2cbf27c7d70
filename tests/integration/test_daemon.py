"""Black-box tests of the aescored lifecycle: command line, configuration, model loading,
bootstrap training, sd_notify, signals, draining and socket activation.

Runs the real binary from $AESCORE_BUILD_DIR on 127.0.0.1 with ephemeral ports; the port is
learned from the "listening on HOST:PORT" log line. Standard library + pytest only.
Binary paths come from daemon_util (the shared harness). Its Daemon always passes --listen
and --model and waits for /health/live; these tests need exact argv (config-only bootstrap,
no model at all, a systemd-socket-activate wrapper) and waits on arbitrary log lines, hence
the small process wrapper below.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib

import pytest

from daemon_util import AESCORE, AESCORED, require_tool

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(ROOT, "data", "credit_default_sample.csv")
FIXTURES = os.path.join(ROOT, "tests", "data")
TIMEOUT = 60  # seconds; generous for sanitizer builds


# ---------------------------------------------------------------------------------------
# helpers


class Daemon:
    """A running aescored with its stderr collected line by line on a thread."""

    def __init__(self, args, env=None, cwd=None, wait_listening=True, argv0=None):
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("LISTEN_FDS", None)
        full_env.pop("LISTEN_PID", None)
        full_env.update(env or {})
        cmd = (argv0 or [AESCORED]) + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, cwd=cwd, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None
        if wait_listening:
            line = self.wait_for("listening on ")
            self.port = int(line.rsplit(":", 1)[1])

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF marker
            self.cond.notify_all()

    def wait_for(self, text, timeout=TIMEOUT, start=0):
        """Returns the first log line (from index start) containing text."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if line is None:
                        raise AssertionError("aescored exited before logging %r:\n%s"
                                             % (text, self.log()))
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r in the log after %ss:\n%s"
                                         % (text, timeout, self.log()))
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def mark(self):
        with self.cond:
            return len(self.lines)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
                headers = dict(headers or {}, **{"Content-Type": "application/json"})
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data
        finally:
            conn.close()

    def json(self, method, path, body=None):
        status, data = self.request(method, path, body)
        return status, json.loads(data) if data else None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        rc = self.proc.wait(timeout)
        self.reader.join(timeout)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(TIMEOUT)
        return self.proc.returncode


def run(args, **kw):
    """Runs a command to completion; returns (exit status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT, env=env, **kw)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """One small model trained by the CLI, copied by each test that changes it."""
    out = tmp_path_factory.mktemp("model") / "model.aes"
    rc, _, err = run([AESCORE, "train", "--data", SAMPLE, "--out", str(out), "--quiet",
                      "--epochs", "5", "--ensemble", "1"])
    assert rc == 0, err
    return out


@pytest.fixture
def model(tmp, trained_model):
    path = tmp / "model.aes"
    shutil.copyfile(trained_model, path)
    return path


@pytest.fixture
def daemon_factory():
    started = []

    def start(*args, **kw):
        d = Daemon(*args, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text):
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------------------
# command line


def test_help_lists_every_option():
    rc, out, _ = run([AESCORED, "--help"])
    assert rc == 0
    for opt in ["--config", "--listen", "--model", "--print-config", "--check-config",
                "--help", "--version"]:
        assert opt in out
    assert "SIGHUP" in out


def test_version_prints_name_and_version():
    rc, out, _ = run([AESCORED, "--version"])
    assert rc == 0
    assert out.startswith("aescored ")


@pytest.mark.parametrize("args", [
    ["--no-such-option"],
    ["--config"],
    ["stray-argument"],
    ["--listen", "no-port-here"],
    ["--model", ""],
])
def test_usage_errors_exit_2_and_point_at_help(args):
    rc, _, err = run([AESCORED] + args)
    assert rc == 2, err
    assert "aescored --help" in err


def test_print_config_shows_flags_over_file(tmp):
    conf = write(tmp / "a.conf", "threads = 3\nlisten = 127.0.0.1:7000\nmax_body_bytes = 1M\n")
    rc, out, err = run([AESCORED, "--config", conf, "--listen", "127.0.0.1:7001",
                        "--print-config"])
    assert rc == 0, err
    lines = out.splitlines()
    assert "listen = 127.0.0.1:7001" in lines
    assert "threads = 3" in lines
    assert "max_body_bytes = 1M" in lines
    assert "model = /var/lib/aescored/model.aes" in lines
    # the output is itself a valid configuration file
    again = write(tmp / "b.conf", out)
    rc, out2, err = run([AESCORED, "--config", again, "--print-config"])
    assert rc == 0, err
    assert out2 == out


def test_check_config_accepts_the_shipped_file():
    conf = os.path.join(ROOT, "config", "aescored.conf")
    rc, out, err = run([AESCORED, "--config", conf, "--check-config"])
    assert rc == 0, err
    assert "OK" in out


def test_check_config_names_file_and_line():
    conf = os.path.join(FIXTURES, "config_unknown_key.conf")
    rc, _, err = run([AESCORED, "--config", conf, "--check-config"])
    assert rc == 1
    assert "%s:3: unknown key 'thread'" % conf in err


def test_missing_config_file_is_an_error(tmp):
    conf = str(tmp / "nope.conf")
    rc, _, err = run([AESCORED, "--config", conf, "--check-config"])
    assert rc == 1
    assert conf in err and "No such file" in err


def test_check_config_refuses_remote_listen_unless_allowed(tmp):
    rc, _, err = run([AESCORED, "--listen", "0.0.0.0:8080", "--check-config"])
    assert rc == 1
    assert "refusing to listen on 0.0.0.0:8080" in err
    assert "allow_remote" in err
    conf = write(tmp / "remote.conf", "allow_remote = yes\n")
    rc, _, err = run([AESCORED, "--config", conf, "--listen", "0.0.0.0:8080",
                      "--check-config"])
    assert rc == 0, err


def test_non_loopback_listen_is_refused_at_startup(model):
    rc, _, err = run([AESCORED, "--listen", "0.0.0.0:0", "--model", str(model)])
    assert rc == 1
    assert "refusing to listen on 0.0.0.0:0" in err


def test_a_port_in_use_is_named_with_the_reason(model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        rc, _, err = run([AESCORED, "--listen", "127.0.0.1:%d" % port, "--model", str(model)])
    assert rc == 1
    assert ("cannot serve HTTP on 127.0.0.1:%d: cannot bind 127.0.0.1:%d: Address already in use"
            % (port, port)) in err, err


def test_a_listen_name_that_does_not_resolve_is_named(tmp, model):
    conf = write(tmp / "remote.conf", "allow_remote = yes\n")
    rc, _, err = run([AESCORED, "--listen", "no-such-host.invalid:8080", "--model", str(model),
                      "--config", conf])
    assert rc == 1
    assert "listen address no-such-host.invalid:8080: " in err, err


# ---------------------------------------------------------------------------------------
# model loading


def corrupt_variants(good):
    data = bytearray(good)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    future = bytearray(data)
    future[8:12] = struct.pack("<I", 99)
    future[-4:] = struct.pack("<I", zlib.crc32(bytes(future[:-4])) & 0xFFFFFFFF)
    return {
        "garbage": (b"this is not a model file at all\n" * 4, "bad magic"),
        "truncated": (bytes(data[:len(data) // 2]), "truncated"),
        "damaged": (bytes(flipped), "checksum"),
        "future_version": (bytes(future), "version"),
    }


@pytest.mark.parametrize("kind", ["garbage", "truncated", "damaged", "future_version"])
def test_bad_model_file_is_fatal_naming_file_and_reason(tmp, trained_model, kind):
    content, reason = corrupt_variants(trained_model.read_bytes())[kind]
    path = tmp / "model.aes"
    path.write_bytes(content)
    rc, _, err = run([AESCORED, "--listen", "127.0.0.1:0", "--model", str(path)])
    assert rc == 1, err
    assert "%s: " % path in err
    assert reason in err
    assert "listening on" not in err


def test_missing_model_without_bootstrap_is_fatal(tmp):
    path = str(tmp / "absent.aes")
    rc, _, err = run([AESCORED, "--listen", "127.0.0.1:0", "--model", path])
    assert rc == 1
    assert "%s: No such file or directory" % path in err
    assert "bootstrap_data" in err


def test_bootstrap_data_trains_the_missing_model(tmp, daemon_factory):
    path = tmp / "boot.aes"
    conf = write(tmp / "boot.conf",
                 "listen = 127.0.0.1:0\nmodel = %s\nbootstrap_data = %s\n" % (path, SAMPLE))
    d = daemon_factory(["--config", conf])
    assert path.exists()
    status, body = d.json("GET", "/health")
    assert status == 200
    assert body["model_version"] == 1
    d.wait_for("bootstrap: trained on")
    # the saved file is the served model
    rc, out, err = run([AESCORE, "inspect", str(path)])
    assert rc == 0, err
    assert body["model_id"] in out


def test_bad_bootstrap_data_is_fatal(tmp):
    bad = write(tmp / "bad.csv", "a,b\n1,2\n3\n")
    conf = write(tmp / "boot.conf", "listen = 127.0.0.1:0\nmodel = %s\nbootstrap_data = %s\n"
                 % (tmp / "m.aes", bad))
    rc, _, err = run([AESCORED, "--config", conf])
    assert rc == 1
    assert bad in err
    assert not (tmp / "m.aes").exists()


# ---------------------------------------------------------------------------------------
# serving, signals, systemd


def test_runs_on_defaults_with_only_listen_and_model(model, daemon_factory):
    d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)])
    status, body = d.json("GET", "/health")
    assert status == 200
    assert body["model_version"] == 1
    assert d.stop() == 0


class NotifySocket:
    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(TIMEOUT)
        self.events = []

    def next_matching(self, prefixes):
        """Returns the next notification line starting with one of prefixes, keeping the
        others in self.events."""
        while True:
            for i, line in enumerate(self.events):
                if line.startswith(tuple(prefixes)):
                    del self.events[:i + 1]
                    return line
            data = self.sock.recv(4096).decode()
            self.events.extend(data.split("\n"))

    def close(self):
        self.sock.close()


def test_sd_notify_ready_reloading_stopping_in_order(model, tmp, daemon_factory):
    n = NotifySocket(str(tmp))
    try:
        d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)],
                           env={"NOTIFY_SOCKET": n.path})
        assert n.next_matching(["READY=1", "RELOADING=1", "STOPPING=1"]) == "READY=1"
        status = n.next_matching(["STATUS="])
        assert status.startswith("STATUS=serving model v1 (")
        assert "features), trained " in status

        d.signal(signal.SIGHUP)
        assert n.next_matching(["READY=1", "RELOADING=1", "STOPPING=1"]) == "RELOADING=1"
        assert n.next_matching(["MONOTONIC_USEC=", "READY=1"]).startswith("MONOTONIC_USEC=")
        assert n.next_matching(["READY=1", "RELOADING=1", "STOPPING=1"]) == "READY=1"
        # the file holds the model served already: nothing changes (DESIGN section 3b)
        assert d.json("GET", "/health")[1]["model_version"] == 1

        d.signal(signal.SIGTERM)
        assert n.next_matching(["READY=1", "RELOADING=1", "STOPPING=1"]) == "STOPPING=1"
        assert d.wait() == 0
    finally:
        n.close()


def test_failed_start_reports_status(tmp):
    n = NotifySocket(str(tmp))
    try:
        env = dict(os.environ, NOTIFY_SOCKET=n.path)
        p = subprocess.run([AESCORED, "--listen", "127.0.0.1:0", "--model",
                            str(tmp / "absent.aes")], env=env, capture_output=True,
                           timeout=TIMEOUT)
        assert p.returncode == 1
        line = n.next_matching(["STATUS=failed", "READY=1"])
        assert line.startswith("STATUS=failed: ")
        assert "absent.aes" in line
    finally:
        n.close()


def test_sighup_with_a_corrupt_file_keeps_serving(model, daemon_factory):
    d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)])
    status, before = d.json("GET", "/health")
    assert status == 200
    model.write_bytes(b"garbage, not a model")
    mark = d.mark()
    d.signal(signal.SIGHUP)
    line = d.wait_for("reload failed", start=mark)
    assert str(model) in line and "bad magic" in line
    status, after = d.json("GET", "/health")
    assert status == 200
    assert after["model_version"] == before["model_version"]
    assert after["model_id"] == before["model_id"]
    assert d.stop() == 0


def test_sighup_reloads_a_new_file(model, tmp, daemon_factory):
    d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)])
    _, before = d.json("GET", "/health")
    other = tmp / "other.aes"
    rc, _, err = run([AESCORE, "train", "--data", SAMPLE, "--out", str(other), "--quiet",
                      "--epochs", "3", "--ensemble", "1", "--seed", "5"])
    assert rc == 0, err
    os.replace(other, model)
    mark = d.mark()
    d.signal(signal.SIGHUP)
    d.wait_for("serving model v2", start=mark)
    _, after = d.json("GET", "/health")
    assert after["model_version"] == 2
    assert after["model_id"] != before["model_id"]


def test_sigterm_lets_requests_in_flight_complete(model, daemon_factory):
    d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)])
    _, info = d.json("GET", "/model")
    # one value per field: a number, or a category the model knows
    values = [0.5 if f["kind"] == "numeric" else f["fill"] for f in info["schema"]]
    body = json.dumps({"records": [{"id": i, "values": values} for i in range(500)]})
    body = body.encode()
    half = len(body) // 2

    # Several requests whose bodies are only half sent when SIGTERM arrives.
    conns = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
        s.sendall(b"POST /score/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        s.sendall(body[:half])
        conns.append(s)
    time.sleep(0.2)
    mark = d.mark()
    d.signal(signal.SIGTERM)
    d.wait_for("stopping", start=mark)
    time.sleep(0.2)
    for s in conns:
        s.sendall(body[half:])
    for s in conns:
        resp = http.client.HTTPResponse(s)
        resp.begin()
        data = resp.read()
        assert resp.status == 200, data
        assert len(json.loads(data)["results"]) == 500
        s.close()
    assert d.wait() == 0
    # and no new connection is accepted any more
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()


def test_sigint_stops_cleanly(model, daemon_factory):
    d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)])
    d.signal(signal.SIGINT)
    assert d.wait() == 0
    assert "SIGINT: stopping" in d.log()


def test_socket_activation_serves_the_inherited_socket(model, daemon_factory):
    require_tool("systemd-socket-activate")
    port = free_port()
    d = daemon_factory(["-l", "127.0.0.1:%d" % port, AESCORED, "--listen", "127.0.0.1:1",
                        "--model", str(model)],
                       argv0=[shutil.which("systemd-socket-activate")], wait_listening=False)
    d.wait_for("Listening on 127.0.0.1:%d" % port)
    # systemd-socket-activate starts the daemon on the first connection
    d.port = port
    status, body = d.json("GET", "/health")
    assert status == 200
    # the daemon served the socket it was given, not its own (port 1) listen setting
    assert "listening on 127.0.0.1:%d" % port in d.wait_for("listening on")
    assert d.stop() == 0


def test_watchdog_is_pinged_every_half_interval(model, tmp, daemon_factory):
    n = NotifySocket(str(tmp))
    try:
        d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)],
                           env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
        assert n.next_matching(["READY=1"]) == "READY=1"
        t0 = time.monotonic()
        for _ in range(4):
            assert n.next_matching(["WATCHDOG=1"]) == "WATCHDOG=1"
        # four pings at ~0.2 s intervals, well inside two whole intervals per ping
        assert time.monotonic() - t0 < 4 * 0.4
        assert d.stop() == 0
    finally:
        n.close()


def test_log_uses_priority_prefixes_only_when_stderr_is_the_journal(model):
    def first_lines(journal_stream):
        r, w = os.pipe()
        st = os.fstat(r)  # both ends of a pipe share one inode
        env = dict(os.environ, JOURNAL_STREAM=journal_stream(st))
        env.pop("NOTIFY_SOCKET", None)
        p = subprocess.Popen([AESCORED, "--listen", "127.0.0.1:0", "--model", str(model)],
                             stdin=subprocess.DEVNULL, stderr=w, env=env)
        os.close(w)
        with os.fdopen(r) as f:
            lines = []
            for line in f:
                lines.append(line.rstrip("\n"))
                if "listening on" in line:
                    break
            p.send_signal(signal.SIGTERM)
            lines += [l.rstrip("\n") for l in f]
        assert p.wait(TIMEOUT) == 0
        return lines

    journal = first_lines(lambda st: "%d:%d" % (st.st_dev, st.st_ino))
    assert any(l.startswith("<5>main: listening on 127.0.0.1:") for l in journal), journal
    assert all(l.startswith("<") for l in journal), journal

    plain = first_lines(lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1))
    listening = [l for l in plain if "listening on" in l][0]
    # 2026-11-29T09:00:00.123Z notice main: listening on 127.0.0.1:PORT
    date, level, rest = listening.split(" ", 2)
    assert len(date) == 24 and date.endswith("Z") and date[10] == "T"
    assert level == "notice"
    assert rest.startswith("main: listening on 127.0.0.1:")


# ---------------------------------------------------------------------------------------
# worker threads


def tasks(pid):
    """The threads of the process (each exists in /proc from its creation on)."""
    return len(os.listdir("/proc/%d/task" % pid))


def test_threads_default_to_the_cpus_the_daemon_may_run_on(tmp, model, daemon_factory):
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "this test needs a machine with 2 CPUs or more"
    conf3 = write(tmp / "threads.conf", "threads = 3\n")

    def started(cpu_set, *extra):
        os.sched_setaffinity(0, cpu_set)  # inherited by the daemon, as under taskset
        try:
            d = daemon_factory(["--listen", "127.0.0.1:0", "--model", str(model)] + list(extra))
        finally:
            os.sched_setaffinity(0, cpus)
        assert d.json("GET", "/health")[0] == 200
        return tasks(d.proc.pid)

    # the same daemon but for its HTTP threads: one per CPU it may run on
    pinned, whole = started({cpus[0]}), started(cpus)
    assert whole - pinned == len(cpus) - 1
    assert started({cpus[0]}, "--config", conf3) - pinned == 2  # an explicit count is kept
