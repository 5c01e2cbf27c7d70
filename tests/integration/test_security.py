"""Security properties of aescored (issue 4, "Security"), black-box against the real binary:
where it listens, who may call what, what reaches the log, TLS, and the systemd unit's
hardening as systemd-analyze scores it.
"""

import http.client
import json
import os
import re
import shutil
import ssl
import subprocess

import pytest

from daemon_util import AESCORED, FEATURES, Daemon, require_tool, train_model, write_csv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(ROOT, "systemd", "aescored.service")
ADMIN = "admin-7f3a9c2e-token"
SCORER = "scorer-51bd08aa-token"
# distinctive values that must never reach a log line
SECRET_VALUES = ["4242.1717", "-9191.3131", "777123.5"]
SECRET_ID = "applicant-DE89370400440532013000"


def run(args, timeout=60):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def write(path, text):
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


def config(tmp, name, **keys):
    return write(os.path.join(str(tmp), name),
                 "".join("%s = %s\n" % (k, v) for k, v in keys.items()))


def bearer(token):
    return {"Authorization": "Bearer " + token}


def assert_401(status, headers, body):
    assert status == 401, body
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("security")


@pytest.fixture(scope="module")
def model(tmp):
    return train_model(tmp)


@pytest.fixture(scope="module")
def tokens(tmp):
    admin = write(os.path.join(str(tmp), "admin.token"), ADMIN + "\n")
    scorer = write(os.path.join(str(tmp), "score.token"), SCORER + "\n")
    return admin, scorer


# ------------------------------------------------------------------------ where it listens

def test_default_listen_address_is_loopback():
    rc, out, err = run([AESCORED, "--print-config"])
    assert rc == 0, err
    assert "listen = 127.0.0.1:8080" in out.splitlines()
    assert "allow_remote = no" in out.splitlines()


@pytest.mark.parametrize("addr", ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080"])
def test_non_loopback_without_admin_token_is_refused(addr):
    rc, _, err = run([AESCORED, "--listen", addr, "--check-config"])
    assert rc == 1
    assert ("refusing to listen on %s: not a loopback address and no admin_token_file"
            % addr) in err
    assert "allow_remote = yes" in err


def test_non_loopback_is_allowed_with_an_admin_token_or_explicitly(tmp, tokens):
    with_token = config(tmp, "remote-token.conf", admin_token_file=tokens[0])
    rc, out, err = run([AESCORED, "--config", with_token, "--listen", "0.0.0.0:8080",
                        "--check-config"])
    assert rc == 0, err
    explicit = config(tmp, "remote-explicit.conf", allow_remote="yes")
    rc, out, err = run([AESCORED, "--config", explicit, "--listen", "0.0.0.0:8080",
                        "--check-config"])
    assert rc == 0, err


def test_non_loopback_start_is_refused_without_token(model):
    rc, _, err = run([AESCORED, "--listen", "0.0.0.0:0", "--model", str(model)])
    assert rc == 1
    assert "refusing to listen on 0.0.0.0:0" in err
    assert "listening on" not in err


# ------------------------------------------------------------------------ who may call what

@pytest.fixture(scope="module")
def guarded(tmp, model, tokens):
    cfg = config(tmp, "guarded.conf", admin_token_file=tokens[0], score_token_file=tokens[1],
                 log_level="debug", min_retrain_rows=20)
    d = Daemon(model, config=cfg).start()
    yield d
    assert d.stop() == 0
    log = d.stderr_text()
    assert ADMIN not in log and SCORER not in log


@pytest.mark.parametrize("method,path", [("POST", "/model/reload"), ("POST", "/model/rollback"),
                                         ("POST", "/retrain"), ("DELETE", "/retrain")])
@pytest.mark.parametrize("who", [None, "wrong", SCORER, ADMIN[:-1], ADMIN + "x", "bearer-less"])
def test_admin_endpoints_refuse_all_but_the_admin_token(guarded, method, path, who):
    headers = {"Content-Type": "application/json"}
    if who == "bearer-less":
        headers["Authorization"] = ADMIN
    elif who is not None:
        headers["Authorization"] = "Bearer " + who
    status, h, body = guarded.request(method, path, body=b"{}", headers=headers)
    assert_401(status, h, body)


def test_admin_token_opens_the_admin_endpoints(guarded):
    status, _, body = guarded.request("POST", "/model/reload", headers=bearer(ADMIN))
    assert status == 200, body
    status, _, body = guarded.request("DELETE", "/retrain", headers=bearer(ADMIN))
    assert status == 409 and json.loads(body)["error"]["code"] == "no_job"


def test_scoring_needs_the_scoring_token(guarded):
    rec = json.dumps({"values": [0.5] * len(FEATURES)}).encode()
    ct = {"Content-Type": "application/json"}
    for path, body in (("/score", rec), ("/score/batch", b'{"records":[%s]}' % rec)):
        status, h, resp = guarded.request("POST", path, body=body, headers=ct)
        assert_401(status, h, resp)
        # the admin token is not the scoring token
        status, h, resp = guarded.request("POST", path, body=body, headers=dict(ct, **bearer(ADMIN)))
        assert_401(status, h, resp)
        status, _, resp = guarded.request("POST", path, body=body,
                                          headers=dict(ct, **bearer(SCORER)))
        assert status == 200, resp
    # health, model and metrics stay open to probes
    for path in ("/health", "/health/live", "/model", "/metrics", "/retrain"):
        assert guarded.request("GET", path)[0] == 200, path


def test_systemd_credentials_fill_the_secret_keys_the_config_leaves_unset(tmp, model):
    """LoadCredential=admin_token:... puts the file in $CREDENTIALS_DIRECTORY: the daemon
    takes it as admin_token_file unless the config names one (which then wins)."""
    creds = os.path.join(str(tmp), "credentials")
    os.makedirs(creds, exist_ok=True)
    write(os.path.join(creds, "admin_token"), ADMIN + "\n")
    write(os.path.join(creds, "score_token"), SCORER + "\n")
    env = {"CREDENTIALS_DIRECTORY": creds}
    rc, out, err = run_env([AESCORED, "--print-config"], env)
    assert rc == 0, err
    assert "admin_token_file = %s/admin_token" % creds in out.splitlines()
    assert "score_token_file = %s/score_token" % creds in out.splitlines()
    assert "tls_cert_file =" in out.splitlines()  # no such credential: stays unset
    with Daemon(model, env=env) as d:
        assert_401(*d.request("DELETE", "/retrain"))
        status, _, body = d.request("DELETE", "/retrain", headers=bearer(ADMIN))
        assert status == 409, body
        rec = json.dumps({"values": [0.5] * len(FEATURES)}).encode()
        ct = {"Content-Type": "application/json"}
        assert_401(*d.request("POST", "/score", body=rec, headers=ct))
        assert d.request("POST", "/score", body=rec, headers=dict(ct, **bearer(SCORER)))[0] == 200
    assert "admin_token_file = $CREDENTIALS_DIRECTORY/admin_token (a systemd credential)" in \
        d.stderr_text()
    assert ADMIN not in d.stderr_text()
    # a path in the config wins over the credential
    other = write(os.path.join(str(tmp), "other.token"), "other-token-1\n")
    cfg = config(tmp, "wins.conf", admin_token_file=other)
    rc, out, err = run_env([AESCORED, "--config", cfg, "--print-config"], env)
    assert "admin_token_file = %s" % other in out.splitlines()


def run_env(args, env):
    full = dict(os.environ, **env)
    full.pop("NOTIFY_SOCKET", None)
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, env=full,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_bad_token_file_is_fatal_and_named(tmp, model):
    empty = write(os.path.join(str(tmp), "empty.token"), "\n")
    cfg = config(tmp, "empty-token.conf", score_token_file=empty)
    rc, _, err = run([AESCORED, "--config", cfg, "--listen", "127.0.0.1:0", "--model",
                      str(model)])
    assert rc == 1
    assert "%s: the scoring token must be one non-empty line" % empty in err
    missing = os.path.join(str(tmp), "absent.token")
    cfg = config(tmp, "absent-token.conf", admin_token_file=missing)
    rc, _, err = run([AESCORED, "--config", cfg, "--listen", "127.0.0.1:0", "--model",
                      str(model)])
    assert rc == 1
    assert "%s: cannot read the admin token: No such file or directory" % missing in err


# ------------------------------------------------------------------------ what reaches the log

def test_debug_logs_carry_no_record_values_no_ids_no_tokens(tmp, model, tokens):
    cfg = config(tmp, "log.conf", admin_token_file=tokens[0], log_level="debug",
                 min_retrain_rows=20)
    n = len(FEATURES)
    vals = [float(SECRET_VALUES[i % len(SECRET_VALUES)]) for i in range(n)]
    with Daemon(model, config=cfg) as d:
        rec = {"id": SECRET_ID, "features": dict(zip(FEATURES, vals))}
        assert d.post_json("/score", rec)[0] == 200
        assert d.post_json("/score/batch", {"records": [rec, {"values": vals}]})[0] == 200
        # refused records too: a wrong type, an unknown feature, a short vector
        bad = {"id": SECRET_ID, "features": dict(zip(FEATURES, vals), extra=vals[0])}
        assert d.post_json("/score", bad)[0] == 422
        assert d.post_json("/score", {"values": vals[:-1]})[0] == 422
        assert d.post_json("/score", b'{"values":[' + SECRET_VALUES[0].encode() + b',')[0] == 400
        # a retrain from JSON and one from CSV
        body = {"records": [{"features": dict(zip(FEATURES, [v + i for v in vals]))}
                            for i in range(30)], "params": {"epochs": 1, "ensemble": 1}}
        status, r = d.post_json("/retrain", body, headers=bearer(tokens and ADMIN))
        assert status == 202, r
        assert d.wait_job()["state"] == "succeeded"
        csv = ",".join(FEATURES) + "\n" + "".join(
            ",".join(SECRET_VALUES[(i + j) % 3] for j in range(n)) + "\n" for i in range(30))
        status, _, resp = d.request("POST", "/retrain?epochs=1&ensemble=1", body=csv.encode(),
                                    headers=dict(bearer(ADMIN), **{"Content-Type": "text/csv"}))
        assert status == 202, resp
        assert d.wait_job()["state"] == "succeeded"
        # and a request with the wrong token
        assert d.request("POST", "/model/reload", headers=bearer("guess-" + ADMIN))[0] == 401
    assert d.returncode == 0
    log = d.stderr_text()
    assert "POST /score 200" in log and "POST /retrain 202" in log  # debug request lines
    for secret in SECRET_VALUES + [SECRET_ID, ADMIN, "guess-"]:
        assert secret not in log, secret


# ------------------------------------------------------------------------ TLS

class TlsDaemon(Daemon):
    def connection(self, timeout=30):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)


def test_tls_serves_https_and_nothing_in_clear(tmp, model):
    require_tool("openssl")
    cert = os.path.join(str(tmp), "cert.pem")
    key = os.path.join(str(tmp), "key.pem")
    rc, _, err = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                      "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert])
    assert rc == 0, err
    cfg = config(tmp, "tls.conf", tls_cert_file=cert, tls_key_file=key)
    with TlsDaemon(model, config=cfg) as d:
        status, h = d.get_json("/health")
        assert status == 200 and h["status"] == "ok"
        status, r = d.post_json("/score", {"values": [0.5] * len(FEATURES)})
        assert status == 200 and "score" in r
        # the certificate served is ours
        der = ssl.PEM_cert_to_DER_cert(open(cert).read())
        c = d.connection()
        c.connect()
        assert c.sock.getpeercert(binary_form=True) == der
        c.close()
        # plain HTTP on the TLS port gets no HTTP answer
        plain = http.client.HTTPConnection(d.host, d.port, timeout=5)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/health")
            plain.getresponse().read()
        plain.close()
        assert d.get_json("/health/live")[0] == 200
    assert d.returncode == 0


def test_tls_needs_both_files(tmp, model):
    cfg = config(tmp, "tls-half.conf", tls_cert_file=os.path.join(str(tmp), "cert.pem"))
    rc, _, err = run([AESCORED, "--config", cfg, "--check-config"])
    assert rc == 1
    assert "tls_cert_file and tls_key_file must be set together" in err


def test_tls_with_a_bad_key_is_fatal(tmp, model):
    junk = write(os.path.join(str(tmp), "junk.pem"), "not a pem\n")
    cfg = config(tmp, "tls-junk.conf", tls_cert_file=junk, tls_key_file=junk)
    rc, _, err = run([AESCORED, "--config", cfg, "--listen", "127.0.0.1:0", "--model",
                      str(model)])
    assert rc == 1
    assert "cannot serve HTTP on 127.0.0.1:0" in err


# ------------------------------------------------------------------------ the systemd unit

SYSTEMD_ANALYZE = require_tool("systemd-analyze")


def test_unit_exposure_is_at_most_1_5():
    rc, out, err = run([SYSTEMD_ANALYZE, "security", "--offline=yes", UNIT])
    m = re.search(r"Overall exposure level for aescored\.service: (\d+\.\d+)", out + err)
    assert m, out + err
    exposure = float(m.group(1))
    print("exposure", exposure)
    assert exposure <= 1.5, out


def test_unit_verifies_cleanly(tmp):
    # verify checks that ExecStart= exists: give it a root with the installed layout
    root = os.path.join(str(tmp), "root")
    units = os.path.join(root, "etc", "systemd", "system")
    os.makedirs(units)
    os.makedirs(os.path.join(root, "usr", "sbin"))
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(AESCORED, os.path.join(root, "usr", "sbin", "aescored"))
    shutil.copy(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin", "kill"))
    for name in ("aescored.service", "aescored.socket"):
        shutil.copy(os.path.join(ROOT, "systemd", name), units)
    for system in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isdir(system):
            shutil.copytree(system, os.path.join(root, system.lstrip("/")), symlinks=True)
            break
    rc, out, err = run([SYSTEMD_ANALYZE, "verify", "--root=" + root, "aescored.service",
                        "aescored.socket"])
    assert rc == 0, out + err
    # unknown keys and bad values are only warnings: there must be none
    assert out + err == "", out + err
