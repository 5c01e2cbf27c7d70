"""meson install: the installed tree is a complete service (issue 14).

Installs the build under test with `meson install --destdir` into a temporary directory and
checks what an operator gets: both binaries (stripped only in release builds), the units
rendered with the configured paths, the config under sysconfdir/aescored, the sample data,
and three man pages that render without a warning and list every training parameter (from
the binary's own table: tests/tools/train_params_json) and every config key (from
`aescored --print-config`). Also checks that systemd/aescored.service and .socket, which
other tests and the README use, are exactly the templates rendered for --prefix=/usr.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from daemon_util import AESCORED, BUILD_DIR

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "train_params_json")
MESON = shutil.which("meson") or "/usr/bin/meson"


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, **kw)


def build_options():
    p = run([MESON, "introspect", BUILD_DIR, "--buildoptions"])
    assert p.returncode == 0, p.stderr
    return {o["name"]: o["value"] for o in json.loads(p.stdout)}


def under(prefix, path):
    return path if os.path.isabs(path) else os.path.join(prefix, path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("destdir"))
    p = run([MESON, "install", "-C", BUILD_DIR, "--no-rebuild", "--destdir", dest])
    assert p.returncode == 0, p.stdout + p.stderr
    opts = build_options()
    prefix = opts["prefix"]
    paths = {k: under(prefix, opts[k])
             for k in ("bindir", "sbindir", "sysconfdir", "datadir", "mandir")}
    paths["buildtype"] = opts["buildtype"]
    paths["strip"] = opts["strip"]
    paths["dest"] = dest
    return paths


def installed(tree, path):
    return os.path.join(tree["dest"], path.lstrip("/"))


def find_units(tree):
    found = {}
    for dirpath, _, names in os.walk(tree["dest"]):
        for n in names:
            if n in ("aescored.service", "aescored.socket"):
                found[n] = os.path.join(dirpath, n)
    return found


def has_debug_info(path):
    p = run(["readelf", "-S", "-W", path])
    assert p.returncode == 0, p.stderr
    return ".debug_info" in p.stdout, ".symtab" in p.stdout


def test_binaries(tree):
    for d, name in ((tree["bindir"], "aescore"), (tree["sbindir"], "aescored")):
        path = installed(tree, os.path.join(d, name))
        assert os.access(path, os.X_OK), path
        p = run([path, "--version"])
        assert p.returncode == 0 and re.search(r"\d+\.\d+\.\d+", p.stdout + p.stderr), p
        debug, symtab = has_debug_info(path)
        if tree["buildtype"] == "release" or tree["strip"]:
            assert not debug and not symtab, path + " is not stripped in a release build"
        elif tree["buildtype"] in ("debug", "debugoptimized"):
            assert debug, path + " lost its debug symbols in a %s build" % tree["buildtype"]


def test_units_name_the_configured_paths(tree):
    units = find_units(tree)
    assert set(units) == {"aescored.service", "aescored.socket"}, units
    service = open(units["aescored.service"]).read()
    exec_start = "ExecStart=%s/aescored --config %s/aescored/aescored.conf" % (
        tree["sbindir"], tree["sysconfdir"])
    assert exec_start in service.splitlines(), service
    assert not re.search(r"@[a-z_]+@", service), "an unsubstituted @VAR@ is left"
    assert "ListenStream=127.0.0.1:8080" in open(units["aescored.socket"]).read()


def test_committed_units_are_the_templates_for_usr():
    for name in ("aescored.service", "aescored.socket"):
        text = open(os.path.join(ROOT, "systemd", name + ".in")).read()
        for var, value in (("sbindir", "/usr/sbin"), ("bindir", "/usr/bin"),
                           ("sysconfdir", "/etc")):
            text = text.replace("@%s@" % var, value)
        assert text == open(os.path.join(ROOT, "systemd", name)).read(), (
            "systemd/%s differs from systemd/%s.in rendered for --prefix=/usr" % (name, name))


def test_config_and_sample_data(tree):
    conf = installed(tree, os.path.join(tree["sysconfdir"], "aescored", "aescored.conf"))
    assert open(conf).read() == open(os.path.join(ROOT, "config", "aescored.conf")).read()
    # the installed daemon accepts the installed config as it stands
    sbin = installed(tree, os.path.join(tree["sbindir"], "aescored"))
    p = run([sbin, "--config", conf, "--check-config"])
    assert p.returncode == 0, p.stdout + p.stderr
    data = installed(tree, os.path.join(tree["datadir"], "aescore"))
    assert sorted(os.listdir(data)) == ["README.md", "credit_default_sample.csv"]
    sample = open(os.path.join(data, "credit_default_sample.csv")).read()
    assert sample == open(os.path.join(ROOT, "data", "credit_default_sample.csv")).read()


PAGES = [("man1", "aescore.1"), ("man8", "aescored.8"), ("man5", "aescored.conf.5")]


def page(tree, section, name):
    return installed(tree, os.path.join(tree["mandir"], section, name))


@pytest.mark.parametrize("section,name", PAGES)
def test_man_page_renders_without_warnings(tree, section, name):
    path = page(tree, section, name)
    p = run(["groff", "-man", "-ww", "-z", path])
    assert p.returncode == 0 and p.stderr == "", p.stderr
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_STDERR="1")
    p = run(["man", "--warnings", "-l", path], env=env)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"):
        assert "\n" + heading + "\n" in p.stdout, heading
    if name != "aescored.conf.5":
        for heading in ("OPTIONS", "EXIT STATUS", "EXAMPLES"):
            assert "\n" + heading + "\n" in p.stdout, heading
    if name == "aescored.8":
        assert "\nSIGNALS\n" in p.stdout
    assert "@" + "TRAIN_OPTIONS" not in p.stdout and "@" + "CONFIG_KEYS" not in p.stdout


def test_aescore_1_lists_every_training_parameter(tree):
    p = run([TOOL])
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    names = [r["name"] for r in (rows["params"] if isinstance(rows, dict) else rows)]
    assert len(names) >= 15, names
    src = open(page(tree, "man1", "aescore.1")).read()
    for n in names:
        option = "\\fB\\-\\-" + n.replace("_", "\\-") + "\\fR"
        assert option in src, "aescore(1) lacks --" + n.replace("_", "-")
        assert "\\fB%s\\fR" % n.replace("-", "\\-") in src, n


def test_aescored_conf_5_lists_every_key(tree):
    p = run([AESCORED, "--print-config"])
    assert p.returncode == 0, p.stderr
    keys = [line.split(" =")[0] for line in p.stdout.splitlines()
            if line and not line.startswith("#")]
    assert len(keys) >= 20, keys
    src = open(page(tree, "man5", "aescored.conf.5")).read()
    for k in keys:
        assert ".TP\n\\fB%s\\fR = " % k.replace("-", "\\-") in src, "aescored.conf(5) lacks " + k
