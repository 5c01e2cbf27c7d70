"""The training-parameter table drives the CLI and the HTTP API alike.

The table comes from the build (tests/tools/train_params_json prints train_params.h's rows).
For every row the test makes values that sit on, inside and just outside its bounds, in
the wrong form and in odd spellings, and decides from the row alone, in Python, whether
each must be taken. Then it asks three doors:
  - the CLI: `aescore train --data MISSING --out X --name VALUE` exits 2 when the value is
    refused, 1 when it was taken (and the missing data file failed later);
  - POST /retrain?name=VALUE with a CSV body of one row: 400 invalid_request naming the
    parameter when refused, 422 too_few_rows when taken;
  - POST /retrain with {"records": [one], "params": {name: value}}, the value as a JSON
    number (numeric rows) or string (word rows): the same two answers.
All must agree with each other and with the independent verdict.
"""

import json
import math
import os
import subprocess

import pytest

from daemon_util import AESCORE, BUILD_DIR, FEATURES, Daemon, train_model

TOOL = os.path.join(BUILD_DIR, "tests", "tools", "train_params_json")
TABLE = json.loads(subprocess.run([TOOL], capture_output=True, text=True, check=True).stdout)
U64_MAX = 2 ** 64 - 1


def in_bounds(row, v):
    lo_ok = v > row["min"] if row["min_open"] else v >= row["min"]
    hi_ok = v < row["max"] if row["max_open"] else v <= row["max"]
    return math.isfinite(v) and lo_ok and hi_ok


def text_integer(s):
    return int(s) if s.isdigit() and s.isascii() else None


def text_decimal(s):
    """The DECIMAL_TEXT grammar: [+-]digits with an optional '.', an optional exponent."""
    if not s.isascii():
        return None
    body = s[1:] if s[:1] in "+-" else s
    mant, _, exp = body.partition("e") if "e" in body else body.partition("E")
    if exp and (exp[:1] in "+-"):
        exp = exp[1:]
    if ("e" in body or "E" in body) and not exp.isdigit():
        return None
    digits = mant.replace(".", "", 1)
    if not digits or not digits.isdigit() or mant.count(".") > 1 or len(s) > 64:
        return None
    return float(s)


def f32(v):
    import struct
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return math.inf


def taken_as_text(row, s):
    """Whether the row takes text s (a CLI argument, a query parameter), decided here."""
    t = row["type"]
    if t == "size":
        v = text_integer(s)
        return v is not None and in_bounds(row, v)
    if t == "seed":
        v = text_integer(s)
        return v is not None and v <= U64_MAX
    if t in ("float", "quantile", "threshold"):
        v = text_decimal(s)
        if v is None:
            return False
        return in_bounds(row, v if t == "quantile" else f32(v))
    if t == "switch":
        return s in ("true", "false", "1", "0", "")
    if t == "activation":
        return s in ("relu", "tanh", "sigmoid")
    if t == "reference":
        return s in ("none", "rows", "centres")
    if t == "hidden":
        if s == "auto":
            return True
        parts = s.split(",")
        return (0 < len(parts) <= row["max_layers"] and
                all(text_integer(p) is not None and in_bounds(row, int(p)) for p in parts))
    if t == "columns":
        return len(s.encode()) <= row["max"]
    raise AssertionError("unknown type " + t)


def taken_as_json(row, v):
    """Whether the row takes the JSON value v (a number, a string or a list)."""
    t = row["type"]
    words = t in ("activation", "hidden", "columns", "reference")
    if isinstance(v, str):
        return words and taken_as_text(row, v)
    if isinstance(v, bool):
        return t == "switch"
    if isinstance(v, list):
        return (t == "hidden" and 0 < len(v) <= row["max_layers"] and
                all(isinstance(e, (int, float)) and e == int(e) and in_bounds(row, e) for e in v))
    if t in ("size", "seed"):
        if v != math.floor(v) or v < 0 or v > 2 ** 53:
            return False
        return t == "seed" or in_bounds(row, v)
    if t in ("float", "threshold"):
        return in_bounds(row, f32(v))
    if t == "quantile":
        return in_bounds(row, v)
    return False


def fmt(v):
    return repr(int(v)) if float(v).is_integer() and abs(v) < 1e17 else repr(float(v))


def candidates(row):
    """Text values around the row's bounds and in odd forms."""
    t, lo, hi = row["type"], row["min"], row["max"]
    odd = ["", "x", " 5", "5 ", "0x10", "nan", "inf", "-1", "+1", "1.5", "1e2", "٣"]
    if t == "size":
        return odd + [fmt(lo), fmt(hi), fmt(lo - 1), fmt(hi + 1), fmt((lo + hi) // 2),
                      "0" + fmt(lo + 1), "99999999999999999999999"]
    if t == "seed":
        return odd + ["0", "42", str(U64_MAX), str(U64_MAX + 1), str(2 ** 53 + 1)]
    if t in ("float", "quantile", "threshold"):
        mid = (lo + hi) / 2
        return odd + [fmt(lo), fmt(hi), repr(mid), repr(hi * 1.5 + 1), repr(lo - 0.5),
                      ".5", "5.", "1e-50", "-0", "1e999", "%.3e" % (hi * 0.999 or 0.5)]
    if t == "switch":
        return ["true", "false", "1", "0", "", "yes", "TRUE"]
    if t == "activation":
        return ["relu", "tanh", "sigmoid", "linear", "softmax", "", "Relu"]
    if t == "reference":
        return ["none", "rows", "centres", "centers", "", "Rows", "0", "1"]
    if t == "hidden":
        n = row["max_layers"]
        return ["auto", "8", "8,4,8", "0", fmt(hi), fmt(hi + 1), "8,,4", "8,", ",8", "a", "",
                ",".join(["4"] * n), ",".join(["4"] * (n + 1)), "4 ,4", "-4"]
    if t == "columns":
        return ["a,b", "", "x" * int(hi), "x" * (int(hi) + 1)]
    raise AssertionError("unknown type " + t)


def json_candidates(row, texts):
    """JSON values: numbers where the text is one, plus the texts themselves and lists."""
    out = []
    for s in texts:
        try:
            v = float(s)
            if math.isfinite(v):
                out.append(int(v) if v.is_integer() and abs(v) < 2 ** 63 else v)
        except ValueError:
            pass
        out.append(s)
    out += [True, False, [8, 4], [0], [8.5]]
    return out


def option(row):
    return "--" + row["name"].replace("_", "-")


def cli_takes(row, value):
    args = [AESCORE, "train", "--data", "/nonexistent/aescore.csv", "--out", "/nonexistent/m"]
    args += [option(row)] if value is None else [option(row), value]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode in (1, 2), (args, r.returncode, r.stderr)
    if r.returncode == 2:
        assert option(row) in r.stderr, r.stderr
    return r.returncode == 1


def http_verdict(status, body, row):
    if status == 400:
        assert body["error"]["code"] == "invalid_request", body
        assert body["error"]["param"] == row["name"], body
        return False
    assert status == 422 and body["error"]["code"] == "too_few_rows", (status, body)
    return True


CSV_BODY = (",".join(FEATURES) + "\n" + ",".join(["0.5"] * len(FEATURES)) + "\n").encode()
ONE_RECORD = {"features": {f: 0.5 for f in FEATURES}}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("params")
    model = train_model(tmp)
    conf = tmp / "aescored.conf"
    conf.write_text("min_retrain_rows = 10\n")
    with Daemon(model, config=str(conf)) as d:
        yield d


def query_takes(d, row, value):
    from urllib.parse import quote
    path = "/retrain?%s=%s" % (row["name"], quote(value, safe=""))
    status, _, data = d.request("POST", path, body=CSV_BODY, headers={"Content-Type": "text/csv"})
    return http_verdict(status, json.loads(data), row)


def json_takes(d, row, value):
    status, body = d.post_json("/retrain", {"records": [ONE_RECORD], "params": {row["name"]: value}})
    return http_verdict(status, body, row)


def test_the_table_has_every_documented_parameter():
    names = {r["name"] for r in TABLE}
    for name in ("epochs", "batch", "lr", "hidden", "activation", "patience", "validation_split",
                 "seed", "threshold_quantile", "threshold", "threshold_f1", "ensemble",
                 "weight_decay", "ignore_columns", "min_category_rows", "reference",
                 "reference_size"):
        assert name in names


@pytest.mark.parametrize("row", TABLE, ids=[r["name"] for r in TABLE])
def test_cli_and_http_take_and_refuse_the_same_text(daemon, row):
    taken = refused = 0
    for s in candidates(row):
        want = taken_as_text(row, s)
        if row["type"] == "switch":
            cli = None  # a switch takes no argument on the command line
        else:
            cli = cli_takes(row, s)
        query = query_takes(daemon, row, s)
        assert query == want, (row["name"], s, "query", query)
        assert cli is None or cli == want, (row["name"], s, "cli", cli)
        taken += want
        refused += not want
    if row["type"] == "switch":
        assert cli_takes(row, None)
    # both verdicts occur for every row, so the loop proves something either way
    assert taken > 0 and refused > 0


@pytest.mark.parametrize("row", TABLE, ids=[r["name"] for r in TABLE])
def test_json_params_follow_the_same_rows(daemon, row):
    for v in json_candidates(row, candidates(row)):
        want = taken_as_json(row, v)
        assert json_takes(daemon, row, v) == want, (row["name"], v)


def test_the_default_of_every_row_is_taken_everywhere(daemon):
    for row in TABLE:
        if row["type"] == "switch" or row["default"] == "":
            continue
        assert taken_as_text(row, row["default"]), row
        assert cli_takes(row, row["default"]), row
        assert query_takes(daemon, row, row["default"]), row
