"""score and eval stream, train samples: big inputs in bounded memory (issue 16).

- score reads a row at a time: its output for a file is the same whatever the file's
  spelling (quoted cells, CRLF, a BOM, line ends inside quotes split across reads) and
  whether it comes as a file or on standard input; --id-column echoes the records' own ids;
  --top-features names model fields; a bad row stops it with file:line after the rows
  before it were written.
- eval's AUC is checked against an independent computation from score's output.
- peak RSS of score, eval and train --max-rows on a 200,000-row file stays under a bound
  the whole-file reader could not meet (it held about five times the file).
- train --max-rows: the same file and seed give the same model; more rows than the file
  give the model of every row; POST /retrain takes max_rows from the same table.
"""

import csv
import io
import os
import random
import subprocess
import threading

import pytest

from daemon_util import AESCORE, Daemon, require_tool, train_model, under_asan, write_csv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO, "data", "credit_default_sample.csv")
ENV = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
QUICK = ["--epochs", "3", "--ensemble", "1"]


def run(*args, stdin=None):
    return subprocess.run([AESCORE, *args], capture_output=True, text=True, env=ENV,
                          input=stdin, timeout=600)


def model_id(path):
    out = run("inspect", str(path)).stdout
    return next(line.split()[1] for line in out.splitlines() if line.startswith("id "))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "m.aes"
    r = run("train", "--data", SAMPLE, "--out", str(out), "--quiet", *QUICK)
    assert r.returncode == 0, r.stderr
    return str(out)


def sample_table():
    with open(SAMPLE, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_spelt(path, header, rows, quote_all, line_end, bom=False):
    with open(path, "w", newline="") as f:
        if bom:
            f.write("\ufeff")
        w = csv.writer(f, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
                       lineterminator=line_end)
        w.writerow(header)
        w.writerows(rows)


def test_score_is_the_same_whatever_the_spelling_and_the_door(model, tmp_path):
    header, rows = sample_table()
    plain = run("score", "--model", model, "--data", SAMPLE)
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == len(rows) + 1
    quoted = tmp_path / "quoted.csv"
    write_spelt(quoted, header, rows, quote_all=True, line_end="\r\n", bom=True)
    assert run("score", "--model", model, "--data", str(quoted)).stdout == plain.stdout
    with open(SAMPLE) as f:
        piped = run("score", "--model", model, "--data", "-", stdin=f.read())
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == plain.stdout


def test_records_split_across_reads_inside_quotes(model, tmp_path):
    """An ignored id column full of quoted line ends makes a 2 MB file whose records
    straddle every read; piped in small writes, reads end anywhere."""
    header, rows = sample_table()
    rnd = random.Random(5)
    big = []
    for k in range(40):
        for i, r in enumerate(rows[:200]):
            note = "r%d\r\nsaid \"%s\",\n%s" % (k * 1000 + i, "x" * rnd.randrange(0, 300), k)
            big.append([note] + r)
    path = tmp_path / "notes.csv"
    write_spelt(path, ["note"] + header, big, quote_all=False, line_end="\r\n")
    assert os.path.getsize(path) > 2_000_000
    # the reference: the same records without the note column
    ref_path = tmp_path / "ref.csv"
    write_spelt(ref_path, header, [r[1:] for r in big], quote_all=False, line_end="\n")
    ref = run("score", "--model", model, "--data", str(ref_path))
    assert ref.returncode == 0, ref.stderr
    got = subprocess.run([AESCORE, "score", "--model", model, "--data", str(path), "--id-column",
                          "note"], capture_output=True, timeout=600)
    assert got.returncode == 0, got.stderr
    out = list(csv.reader(io.StringIO(got.stdout.decode(), newline="")))
    assert out[0] == ["note", "score", "anomaly"]
    assert [r[0] for r in out[1:]] == [r[0] for r in big]  # ids echoed, quoted back
    ref_rows = [line.split(",")[1:] for line in ref.stdout.splitlines()[1:]]
    assert [r[1:] for r in out[1:]] == ref_rows
    # the same bytes through a pipe written in odd-sized pieces
    data = path.read_bytes()
    p = subprocess.Popen([AESCORE, "score", "--model", model, "--data", "-", "--id-column",
                          "note"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    def feed():
        pos = 0
        while pos < len(data):
            n = rnd.randrange(1, 5000)
            p.stdin.write(data[pos:pos + n])
            p.stdin.flush()
            pos += n
        p.stdin.close()

    t = threading.Thread(target=feed)
    t.start()
    stdout = p.stdout.read()  # not communicate(): it would close stdin under feed()
    stderr = p.stderr.read()
    p.wait(timeout=600)
    t.join()
    assert p.returncode == 0, stderr
    assert stdout == got.stdout


def test_id_column_and_top_features(model):
    header, rows = sample_table()
    plain = run("score", "--model", model, "--data", SAMPLE).stdout.splitlines()
    r = run("score", "--model", model, "--data", SAMPLE, "--id-column", "age",
            "--top-features", "3")
    assert r.returncode == 0, r.stderr
    out = list(csv.reader(io.StringIO(r.stdout)))
    assert out[0] == ["age", "score", "anomaly", "top_1", "top_2", "top_3"]
    age = header.index("age")
    fields = set(h for h in header if h != "label")
    for got, want, line in zip(out[1:], rows, plain[1:]):
        assert got[0] == want[age]
        assert float(got[1]) == pytest.approx(float(line.split(",")[1]), rel=1e-5)
        assert got[2] == line.split(",")[2]
        assert len(set(got[3:])) == 3 and set(got[3:]) <= fields
    r = run("score", "--model", model, "--data", SAMPLE, "--id-column", "nope")
    assert r.returncode == 1 and "credit_default_sample.csv:1: no id column 'nope'" in r.stderr
    r = run("score", "--model", model, "--data", SAMPLE, "--top-features", "x")
    assert r.returncode == 2 and "--top-features: expected an integer" in r.stderr


def roc_auc(scores, labels):
    """Mann-Whitney U with ties counted half, computed here from score's output."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = sorted(s for s, y in zip(scores, labels) if y == 0)
    import bisect
    total = 0.0
    for s in pos:
        lo = bisect.bisect_left(neg, s)
        hi = bisect.bisect_right(neg, s)
        total += lo + 0.5 * (hi - lo)
    return total / (len(pos) * len(neg))


def test_eval_streams_and_matches_an_independent_auc(model):
    import json
    _, rows = sample_table()
    labels = [int(r[-1]) for r in rows]
    scores = [float(line.split(",")[1])
              for line in run("score", "--model", model, "--data", SAMPLE).stdout.splitlines()[1:]]
    e = run("eval", "--model", model, "--data", SAMPLE, "--json")
    assert e.returncode == 0, e.stderr
    got = json.loads(e.stdout)
    assert got["rows"] == len(rows) and got["anomalies"] == sum(labels)
    assert got["roc_auc"] == pytest.approx(roc_auc(scores, labels), abs=2e-6)
    with open(SAMPLE) as f:
        piped = run("eval", "--model", model, "--data", "-", "--json", stdin=f.read())
    assert json.loads(piped.stdout) == got


def test_a_bad_row_stops_score_after_the_rows_before_it(model, tmp_path):
    header, rows = sample_table()
    bad = [list(r) for r in rows[:10]]
    bad[6][header.index("education")] = "line one\nline two"  # a category: fine
    bad[7][header.index("age")] = "old"                        # text in a numeric field
    path = tmp_path / "bad.csv"
    write_spelt(path, header, bad, quote_all=False, line_end="\n")
    r = run("score", "--model", model, "--data", str(path))
    assert r.returncode == 1
    # row 8 starts on line 10: the header, 7 rows, one of them two lines long
    assert "bad.csv:10: field 'age': text where the model expects a number" in r.stderr
    assert len(r.stdout.splitlines()) == 1 + 7
    r = run("score", "--model", model, "--data", "-", stdin="age,x\n1,2\n3\n")
    assert r.returncode == 1 and "<stdin>:" in r.stderr


TIME = require_tool("time", fallback="/usr/bin/time")


def peak_rss_kib(args, stdin=None, tmp=None):
    """Runs the CLI under /usr/bin/time and returns (exit status, stderr, its peak RSS in
    KiB). Not wait4 from here: a child's peak counts the pytest process it was forked from."""
    out = os.path.join(tmp, "rss")
    with open(os.devnull, "w") as null:
        p = subprocess.run([TIME, "-f", "%M", "-o", out, AESCORE, *args], stdout=null,
                           stderr=subprocess.PIPE, stdin=stdin, env=ENV, timeout=600)
    with open(out) as f:
        rss = int(f.read().split()[-1])
    return p.returncode, p.stderr.decode(), rss


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """200,000 rows x 20 numeric columns (and a label), about 30 MB."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    rnd = random.Random(11)
    names = ["f%d" % i for i in range(20)]
    with open(path, "w") as f:
        f.write(",".join(names) + ",label\n")
        for i in range(200_000):
            z = rnd.gauss(0, 1)
            f.write(",".join("%.5f" % (z * (k % 5 - 2) + rnd.gauss(0, 0.3)) for k in range(20)))
            f.write(",%d\n" % (i % 50 == 0))
    return path


@pytest.mark.skipif(under_asan(), reason="ASan's quarantine holds freed memory")
def test_memory_does_not_grow_with_the_rows(big_file, tmp_path):
    size_mib = os.path.getsize(big_file) / 2**20
    assert size_mib > 25
    m = tmp_path / "big.aes"
    status, err, rss = peak_rss_kib(["train", "--data", str(big_file), "--out", str(m),
                                     "--max-rows", "5000", *QUICK], tmp=tmp_path)
    assert status == 0, err
    assert "read 200000 rows, kept 5000 normal rows and 4000 anomalies" in err
    assert rss < 32 * 1024, rss
    status, err, rss = peak_rss_kib(["score", "--model", str(m), "--data", str(big_file)], tmp=tmp_path)
    assert status == 0, err
    assert rss < 32 * 1024, "score peak RSS %d KiB on a %.0f MiB file" % (rss, size_mib)
    status, err, rss = peak_rss_kib(["eval", "--model", str(m), "--data", str(big_file)], tmp=tmp_path)
    assert status == 0, err
    assert rss < 32 * 1024, "eval peak RSS %d KiB" % rss  # 5 bytes a row: 1 MB
    with open(big_file) as f:
        status, err, rss = peak_rss_kib(["score", "--model", str(m), "--data", "-"], stdin=f,
                                         tmp=tmp_path)
    assert status == 0, err
    assert rss < 32 * 1024, rss


def test_max_rows_sample_is_deterministic(tmp_path):
    data = SAMPLE
    a, b, c, every, whole = (tmp_path / n for n in ("a", "b", "c", "every", "whole"))
    for out, extra in ((a, ["--max-rows", "500", "--seed", "3"]),
                       (b, ["--max-rows", "500", "--seed", "3"]),
                       (c, ["--max-rows", "500", "--seed", "4"]),
                       (every, ["--max-rows", "100000", "--seed", "3"]),
                       (whole, ["--seed", "3"])):
        r = run("train", "--data", data, "--out", str(out), *QUICK, *extra)
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert model_id(a) != model_id(c)
    assert every.read_bytes() == whole.read_bytes()  # more rows than the file: all of them
    r = run("train", "--data", data, "--out", str(a), *QUICK, "--max-rows", "500")
    assert "read 3525 rows, kept 500 normal rows and 500 anomalies" in r.stderr
    with open(SAMPLE) as f:
        r = run("train", "--data", "-", "--out", str(c), *QUICK, "--max-rows", "500",
                "--seed", "3", stdin=f.read())
    assert r.returncode == 0, r.stderr
    assert c.read_bytes() == b.read_bytes()  # standard input: the same sample
    r = run("train", "--data", data, "--out", str(a), "--max-rows", "1e3")
    assert r.returncode == 2 and "--max-rows: expected a non-negative integer" in r.stderr


def test_retrain_takes_max_rows(tmp_path):
    model = train_model(tmp_path)
    body = write_csv(tmp_path / "body.csv", rows=300, seed=9)
    conf = tmp_path / "aescored.conf"
    conf.write_text("min_retrain_rows = 10\n")
    with Daemon(model, config=str(conf)) as d:
        data = open(body, "rb").read()
        status, _, reply = d.request("POST", "/retrain?max_rows=40&seed=5&epochs=2", body=data,
                                     headers={"Content-Type": "text/csv"})
        import json
        assert status == 202, reply
        got = json.loads(reply)
        assert got["rows"] == 40 and got["rows_read"] == 300
        d.wait_job()
        status, _, reply = d.request("POST", "/retrain?max_rows=-2", body=data,
                                     headers={"Content-Type": "text/csv"})
        assert status == 400 and b"max_rows" in reply, reply
        header, *rows = open(body).read().splitlines()
        names = header.split(",")
        recs = [{"features": dict(zip(names, map(float, r.split(","))))} for r in rows]
        status, got = d.post_json("/retrain", {"records": recs,
                                               "params": {"max_rows": 25, "epochs": 2}})
        assert status == 202, got
        assert got["rows"] == 25 and got["rows_read"] == 300
        d.wait_job()
