"""Black-box tests of the aescore CLI: the real binary on the bundled credit sample.

The build directory comes from $AESCORE_BUILD_DIR (meson sets it; default ./build).
"""

import json
import math
import os
import subprocess

import pytest

BUILD_DIR = os.environ.get("AESCORE_BUILD_DIR", os.path.join(os.getcwd(), "build"))
AESCORE = os.path.join(BUILD_DIR, "src", "aescore")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO, "data", "credit_default_sample.csv")
FAST = ["--epochs", "4", "--ensemble", "1"]


def run(*args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([AESCORE, *args], capture_output=True, text=True, env=full_env,
                          timeout=300)


def sample_rows():
    with open(SAMPLE) as f:
        lines = [line for line in f.read().splitlines() if line]
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    return header, rows


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "credit.aes")
    r = run("train", "--data", SAMPLE, "--out", path, *FAST)
    assert r.returncode == 0, r.stderr
    # piped, progress is one plain line per member on stderr, when the member ends
    lines = [line for line in r.stderr.splitlines() if line.startswith("member ")]
    assert len(lines) == 1 and lines[0].startswith("member 1/1 epoch "), r.stderr
    assert " done in " in lines[0] and "\r" not in r.stderr
    assert r.stdout == ""
    return path


def test_train_eval_score_inspect_on_the_bundled_sample(model):
    header, rows = sample_rows()
    anomalies = sum(1 for row in rows if row[-1] == "1")

    r = run("eval", "--model", model, "--data", SAMPLE, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "threshold",
                "rows", "anomalies"):
        assert key in report
    assert report["rows"] == len(rows)
    assert report["anomalies"] == anomalies
    assert 0.5 < report["roc_auc"] <= 1
    assert 0 <= report["pr_auc"] <= 1
    assert report["tp"] + report["fn"] == anomalies
    assert report["tp"] + report["fp"] + report["tn"] + report["fn"] == len(rows)

    text = run("eval", "--model", model, "--data", SAMPLE)
    assert text.returncode == 0
    assert "ROC AUC" in text.stdout and "%.4f" % report["roc_auc"] in text.stdout

    r = run("score", "--model", model, "--data", SAMPLE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "id,score,anomaly"
    assert len(lines) == len(rows) + 1
    flagged = 0
    for i, line in enumerate(lines[1:], start=1):
        rid, score, flag = line.split(",")
        assert int(rid) == i
        assert math.isfinite(float(score))  # combined scores (README "The score") may be < 0
        assert flag in ("0", "1")
        assert (float(score) > report["threshold"]) == (flag == "1")
        flagged += flag == "1"
    assert flagged == report["tp"] + report["fp"]

    r = run("inspect", model)
    assert r.returncode == 0, r.stderr
    fields = r.stdout.split("\nfields ")[1]
    assert fields.startswith("      %d (" % (len(header) - 1))
    assert "limit_bal                numeric" in fields and "label" not in fields
    assert "education                categorical" in fields
    assert "0.99 quantile" in r.stdout
    assert "\nformat       4\n" in r.stdout


def test_inspect_names_the_files_format_not_the_builds():
    corpus = os.path.join(REPO, "tests", "fuzz", "corpus", "model_file")
    for name, version in (("v2_numeric.aes", 2), ("v4_rows_reference.aes", 4)):
        path = os.path.join(corpus, name)
        with open(path, "rb") as f:
            head = f.read(12)
        assert head[:8] == b"AESCORE\0"
        assert int.from_bytes(head[8:12], "little") == version  # the file says so itself
        r = run("inspect", path)
        assert r.returncode == 0, r.stderr
        want = "format       %d%s\n" % (version, " (this build writes 4)" if version < 4 else "")
        assert "\n" + want in r.stdout, r.stdout


def test_score_accepts_columns_in_any_order(model, tmp_path):
    header, rows = sample_rows()
    order = list(reversed(range(len(header))))
    path = tmp_path / "reordered.csv"
    path.write_text("\n".join(",".join(row[i] for i in order) for row in [header] + rows[:50])
                    + "\n")
    straight = tmp_path / "straight.csv"
    straight.write_text("\n".join(",".join(row) for row in [header] + rows[:50]) + "\n")
    a = run("score", "--model", model, "--data", str(path))
    b = run("score", "--model", model, "--data", str(straight))
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout


def test_same_seed_and_source_date_epoch_give_byte_identical_files(tmp_path):
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    a, b = str(tmp_path / "a.aes"), str(tmp_path / "b.aes")
    for out in (a, b):
        r = run("train", "--data", SAMPLE, "--out", out, "--quiet", *FAST, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""  # --quiet
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    r = run("train", "--data", SAMPLE, "--out", str(tmp_path / "c.aes"), "--quiet", "--seed",
            "43", *FAST, env=env)
    assert r.returncode == 0
    with open(a, "rb") as fa, open(tmp_path / "c.aes", "rb") as fc:
        assert fa.read() != fc.read()


def test_threshold_options(tmp_path):
    out = str(tmp_path / "f1.aes")
    r = run("train", "--data", SAMPLE, "--out", out, "--threshold-f1", "--quiet", *FAST)
    assert r.returncode == 0, r.stderr
    assert "quantile" not in run("inspect", out).stdout
    r = run("train", "--data", SAMPLE, "--out", out, "--threshold", "2.5", "--quiet", *FAST)
    assert r.returncode == 0, r.stderr
    assert "threshold    2.5\n" in run("inspect", out).stdout
    report = json.loads(run("eval", "--model", out, "--data", SAMPLE, "--json").stdout)
    assert report["threshold"] == 2.5


@pytest.mark.parametrize("args, message", [
    ([], "Usage: aescore COMMAND"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["train", "--out", "x"], "--data and --out are required"),
    (["train", "--data", "x"], "--data and --out are required"),
    (["train", "--data", "x", "--out", "y", "--hidden", "64,,16"], "--hidden: expected"),
    (["train", "--data", "x", "--out", "y", "--hidden", "0"], "--hidden: expected"),
    (["train", "--data", "x", "--out", "y", "--epochs", "-3"], "--epochs: expected"),
    (["train", "--data", "x", "--out", "y", "--lr", "fast"], "--lr: expected a number"),
    (["train", "--data", "x", "--out", "y", "--activation", "softmax"], "--activation"),
    (["train", "--data", "x", "--out", "y", "--validation-split", "1.5"],
     "--validation-split: validation_split must be in (0, 1), got '1.5'"),
    (["train", "--data", "x", "--out", "y", "--lr", "1e30"], "--lr: lr must be in (0, 1e+06]"),
    (["train", "--data", "x", "--out", "y", "--threshold-f1", "--threshold", "1"],
     "choose one of"),
    (["train", "--data", "x", "--out", "y", "--bogus"], "unrecognized option"),
    (["eval", "--model", "m"], "--model and --data are required"),
    (["score", "--model", "m", "--data", "d", "--json"], "unknown option '--json'"),
    (["inspect"], "expected exactly one MODEL"),
    (["inspect", "a", "b"], "expected exactly one MODEL"),
])
def test_usage_errors_exit_2_with_a_message(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("command", ["train", "eval", "score", "report", "inspect"])
def test_help_lists_every_option(command):
    r = run(command, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: aescore " + command)
    if command == "train":
        for option in ("--data", "--out", "--label-column", "--hidden", "--activation",
                       "--epochs", "--batch", "--lr", "--weight-decay", "--patience",
                       "--validation-split", "--seed", "--ensemble", "--threshold-quantile",
                       "--threshold-f1", "--threshold", "--quiet"):
            assert option in r.stdout
        assert "[0.99]" in r.stdout and "[label]" in r.stdout


def test_missing_and_damaged_model_files_exit_1_naming_them(model, tmp_path):
    missing = str(tmp_path / "nope.aes")
    r = run("inspect", missing)
    assert r.returncode == 1
    assert r.stderr == "aescore: %s: No such file or directory\n" % missing

    data = open(model, "rb").read()
    damaged = tmp_path / "damaged.aes"
    damaged.write_bytes(data[:100] + bytes([data[100] ^ 0x40]) + data[101:])
    r = run("eval", "--model", str(damaged), "--data", SAMPLE)
    assert r.returncode == 1
    assert r.stderr == "aescore: %s: model file checksum mismatch (damaged file)\n" % damaged

    truncated = tmp_path / "truncated.aes"
    truncated.write_bytes(data[:len(data) // 2])
    r = run("score", "--model", str(truncated), "--data", SAMPLE)
    assert r.returncode == 1
    assert r.stderr == "aescore: %s: model file is truncated\n" % truncated

    r = run("inspect", SAMPLE)
    assert r.returncode == 1
    assert "not an aescore model file" in r.stderr


def test_csv_errors_name_file_line_and_column(model, tmp_path):
    header, rows = sample_rows()
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(header) + "\n" + ",".join(rows[0]) + "\n"
                   + ",".join(rows[1][:-2]) + "\n")
    for args in (["train", "--data", str(bad), "--out", str(tmp_path / "m.aes")],
                 ["score", "--model", model, "--data", str(bad)]):
        r = run(*args)
        assert r.returncode == 1
        assert r.stderr.startswith("aescore: %s:3:" % bad), r.stderr
    assert not os.path.exists(tmp_path / "m.aes")

    text = tmp_path / "text.csv"
    text.write_text(",".join(header) + "\n" + ",".join(rows[0]) + "\n"
                    + ",".join(["abc"] + rows[1][1:]) + "\n")
    r = run("score", "--model", model, "--data", str(text))
    assert r.returncode == 1
    assert r.stderr == ("aescore: %s:3: field 'limit_bal': text where the model expects a "
                        "number\n" % text)

    missing = str(tmp_path / "absent.csv")
    r = run("train", "--data", missing, "--out", str(tmp_path / "m.aes"))
    assert r.returncode == 1
    assert missing in r.stderr and "No such file" in r.stderr


def test_columns_must_match_the_model(model, tmp_path):
    header, rows = sample_rows()
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("\n".join(",".join(row[1:]) for row in [header] + rows[:5]) + "\n")
    r = run("score", "--model", model, "--data", str(fewer))
    assert r.returncode == 1
    assert r.stderr == "aescore: %s:1: the model's field '%s' has no column\n" % (fewer, header[0])

    extra = tmp_path / "extra.csv"
    lines = [header + ["surprise"]] + [row + ["1"] for row in rows[:5]]
    extra.write_text("\n".join(",".join(line) for line in lines) + "\n")
    r = run("score", "--model", model, "--data", str(extra))
    assert r.returncode == 1
    assert r.stderr == "aescore: %s:1: column 'surprise' is not a field of the model\n" % extra

    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("\n".join(",".join(row[:-1]) for row in [header] + rows[:5]) + "\n")
    r = run("eval", "--model", model, "--data", str(unlabelled))
    assert r.returncode == 1
    assert "no label column 'label'" in r.stderr


def test_training_needs_enough_normal_rows(tmp_path):
    header, rows = sample_rows()
    few = tmp_path / "few.csv"
    few.write_text("\n".join(",".join(row) for row in [header] + rows[:5]) + "\n")
    r = run("train", "--data", str(few), "--out", str(tmp_path / "m.aes"))
    assert r.returncode == 1
    assert "normal rows: at least 10 are needed" in r.stderr
    assert not os.path.exists(tmp_path / "m.aes")


def test_an_unwritable_output_fails_cleanly(tmp_path):
    out = str(tmp_path / "no-such-dir" / "m.aes")
    r = run("train", "--data", SAMPLE, "--out", out, "--quiet", *FAST)
    assert r.returncode == 1
    assert r.stderr.startswith("aescore: %s: " % out)


def test_text_and_missing_cells_are_encoded_as_the_model_learnt(model, tmp_path):
    header, rows = sample_rows()
    col = {name: i for i, name in enumerate(header)}
    base = list(rows[1])
    base[col["age"]] = "70"              # neither is the value imputed below
    base[col["marriage"]] = "married"
    variants = [list(base) for _ in range(4)]
    variants[1][col["age"]] = ""                       # missing number: imputed
    variants[2][col["education"]] = "phd"              # unseen category: "other"
    variants[3][col["marriage"]] = ""                  # missing category: the most frequent
    path = tmp_path / "variants.csv"
    path.write_text("\n".join(",".join(r) for r in [header] + variants) + "\n")
    r = run("score", "--model", model, "--data", str(path))
    assert r.returncode == 0, r.stderr
    scores = [float(line.split(",")[1]) for line in r.stdout.splitlines()[1:]]
    assert len(scores) == 4
    assert len(set(scores)) == 4  # each change moved the score

    # the imputed values are the ones inspect shows: writing them out gives the same score
    info = run("inspect", model).stdout
    median_age = info.split("\n  age ")[1].split("missing -> ")[1].split()[0]
    mode_marriage = info.split("\n  marriage ")[1].split("missing -> ")[1].split(":")[0]
    explicit = [list(base), list(base)]
    explicit[0][col["age"]] = median_age
    explicit[1][col["marriage"]] = mode_marriage
    path2 = tmp_path / "explicit.csv"
    path2.write_text("\n".join(",".join(r) for r in [header] + explicit) + "\n")
    again = [float(line.split(",")[1]) for line in
             run("score", "--model", model, "--data", str(path2)).stdout.splitlines()[1:]]
    assert again == [scores[1], scores[3]]


def test_id_like_and_ignored_columns_are_left_out(tmp_path):
    header, rows = sample_rows()
    path = tmp_path / "with_ids.csv"
    lines = [["customer_id", "branch"] + header]
    lines += [["c%05d" % i, "north" if i % 2 else "south"] + row for i, row in enumerate(rows)]
    path.write_text("\n".join(",".join(r) for r in lines) + "\n")
    out = str(tmp_path / "ids.aes")
    r = run("train", "--data", str(path), "--out", out, "--ignore-columns", "branch", *FAST)
    assert r.returncode == 0, r.stderr
    assert "left out column 'customer_id'" in r.stderr
    assert "left out column 'branch'" in r.stderr
    info = run("inspect", out).stdout
    assert "  customer_id              ignored" in info
    assert "  branch                   ignored" in info
    # scoring the same file works: ignored columns may be present
    r = run("score", "--model", out, "--data", str(path))
    assert r.returncode == 0, r.stderr
    r = run("train", "--data", str(path), "--out", out, "--ignore-columns", "nope", *FAST)
    assert r.returncode == 1
    assert "no column 'nope' to ignore" in r.stderr


def test_a_fully_quoted_export_trains_the_same_model_as_the_plain_csv(tmp_path):
    """pandas' QUOTE_ALL and spreadsheets quote every cell: the quotes are CSV syntax, not
    part of the values, so the categories and the numbers must come out as in the plain file
    (RFC 4180), and the two models must be byte-identical."""
    header, rows = sample_rows()
    quoted = tmp_path / "quoted.csv"
    quoted.write_text("\r\n".join(",".join('"%s"' % c for c in r) for r in [header] + rows) + "\r\n")
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    plain_model, quoted_model = tmp_path / "plain.aes", tmp_path / "quoted.aes"
    for data, out in ((SAMPLE, plain_model), (str(quoted), quoted_model)):
        r = run("train", "--data", data, "--out", str(out), "--quiet", *FAST, env=env)
        assert r.returncode == 0, r.stderr
    info = run("inspect", str(quoted_model)).stdout
    assert " university" in info and '"university"' not in info
    assert plain_model.read_bytes() == quoted_model.read_bytes()
    # and a quoted file scores as the plain one does
    plain = run("score", "--model", str(plain_model), "--data", SAMPLE).stdout
    assert run("score", "--model", str(plain_model), "--data", str(quoted)).stdout == plain


def test_version_names_the_project_version():
    r = run("--version")
    assert r.returncode == 0 and r.stderr == ""
    meson = open(os.path.join(os.path.dirname(__file__), "..", "..", "meson.build")).read()
    version = meson.split("version: '", 1)[1].split("'", 1)[0]
    assert r.stdout == "aescore %s\n" % version


def test_on_a_terminal_progress_is_one_line_per_member_rewritten_in_place(tmp_path):
    import pty
    master, slave = pty.openpty()
    out = str(tmp_path / "tty.aes")
    proc = subprocess.Popen([AESCORE, "train", "--data", SAMPLE, "--out", out,
                             "--epochs", "3", "--ensemble", "2"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0
    text = seen.decode()
    # every epoch redraws the line ("\r" + erase line); each member ends with one newline
    assert text.count("\r\x1b[K") >= 6, text
    finished = [l.rsplit("\x1b[K", 1)[-1] for l in text.splitlines() if " done in " in l]
    assert [l.split(" epoch ")[0] for l in finished] == ["member 1/2", "member 2/2"], text
    assert "ETA " in text


def test_reference_options_choose_the_neighbour_term(tmp_path):
    for kind, size in (("centres", "20"), ("none", "1024")):
        model = str(tmp_path / (kind + ".aes"))
        r = run("train", "--data", SAMPLE, "--out", model, "--quiet", "--epochs", "3",
                "--ensemble", "1", "--reference", kind, "--reference-size", size)
        assert r.returncode == 0, r.stderr
        r = run("inspect", model)
        assert r.returncode == 0, r.stderr
        if kind == "none":
            assert "score        reconstruction error (mse); reference none" in r.stdout
            continue
        line = [l for l in r.stdout.splitlines() if l.startswith("reference ")][0]
        n = int(line.split()[2])
        assert line.startswith("reference    centres: ") and 1 <= n <= 20
        assert "(log mse - m1)/s1 + (log knn5 - m2)/s2" in r.stdout
    r = run("train", "--data", SAMPLE, "--out", str(tmp_path / "x.aes"), "--reference", "all")
    assert r.returncode == 2 and "reference" in r.stderr
