"""The README's curl examples work as printed.

Every `curl` command of the README's daemon section runs, through bash and from the
repository root, against a real aescored set up the way scripts/run.sh sets it up (model
trained from the bundled sample by bootstrap_data); only the port differs.
"""

import json
import os
import re
import subprocess

import pytest

from daemon_util import Daemon, require_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CURL = require_tool("curl")


def readme_curl_commands():
    text = open(os.path.join(REPO, "README.md")).read()
    section = text[text.index("## The daemon"):text.index("### Under systemd")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("curl "):
                commands.append(command)
    return commands


def test_the_readme_shows_every_endpoint():
    shown = {(("DELETE" if "-X DELETE" in c else "POST" if ("-X POST" in c or "--data" in c)
               else "GET"), re.search(r"http://127\.0\.0\.1:8080(/[a-z0-9/]*)", c).group(1))
             for c in readme_curl_commands()}
    for endpoint in [("POST", "/score"), ("POST", "/score/batch"), ("POST", "/retrain"),
                     ("GET", "/retrain"), ("DELETE", "/retrain"), ("GET", "/health"),
                     ("GET", "/health/live"), ("GET", "/model"), ("POST", "/model/reload"),
                     ("POST", "/model/rollback"), ("GET", "/metrics"), ("GET", "/models"),
                     ("POST", "/model/promote"), ("GET", "/v2"), ("GET", "/v2/health/live"),
                     ("GET", "/v2/health/ready"), ("GET", "/v2/models/aescore"),
                     ("GET", "/v2/models/aescore/ready"),
                     ("POST", "/v2/models/aescore/infer")]:
        assert endpoint in shown


def test_every_curl_example_works_as_printed(tmp_path):
    config = tmp_path / "aescored.conf"
    config.write_text("bootstrap_data = %s\n" % os.path.join(REPO, "data",
                                                             "credit_default_sample.csv"))
    with Daemon(tmp_path / "model.aes", config=config, timeout=120) as d:
        for command in readme_curl_commands():
            command = command.replace("127.0.0.1:8080", "127.0.0.1:%d" % d.port)
            r = subprocess.run(["bash", "-c", command + " -w '\\n%{http_code}'"], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, (command, r.stderr)
            body, status = r.stdout.rsplit("\n", 1)
            if "/metrics" in command:
                assert status == "200" and "aescore_model_version" in body
                continue
            reply = json.loads(body)
            if "-X DELETE" in command:
                # the retrain above may have finished already: both answers are documented
                assert (status, reply.get("error", {}).get("code")) in (("202", None),
                                                                        ("409", "no_job"))
            elif "/model/promote" in command:
                # the retrain above was promoted: no candidate waits, as documented
                assert (status, reply["error"]["code"]) == ("409", "no_candidate"), reply
            else:
                assert status in ("200", "202"), (command, status, body)
            if command.startswith("curl -s -H 'Content-Type: text/csv'"):
                for _ in range(600):
                    st = json.loads(subprocess.run(
                        ["curl", "-s", "http://127.0.0.1:%d/retrain" % d.port],
                        capture_output=True, text=True).stdout)
                    if st["state"] != "running":
                        break
                    subprocess.run(["sleep", "0.05"])
                assert st["state"] == "succeeded", st
    assert d.returncode == 0
