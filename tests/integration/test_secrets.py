"""Package index credentials never show: not in Ansible's output, not in the device's process
list, not in a file left on the device, also when the install fails.

The env roles run on a simulated device with jetson_env_pip_index_url carrying a token; the
index refuses connections (nothing listens on port 9 of the device's loopback), so pip fails
after its retries. A sampler on the host reads the command line and environment of every
process of the device's mount namespace while the play runs.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml
from fleet import procs

from tests.integration.envside import (
    FLEET_VARS,
    REPO,
    TEST_PLAYBOOKS,
    copy_fleet_vars,
    fleet,
    make_catalog,
    playbook,
)

TOKEN = "SIMtok-5e1f0c9a7b2d4e6f8a0b"
INDEX_URL = f"http://ci-builder:{TOKEN}@127.0.0.1:9/simple"
DEVICE_DIRS = "/opt /root /tmp /var/tmp /etc /run /usr/local"


class ProcessSampler(threading.Thread):
    """Reads /proc/<pid>/cmdline and environ of a namespace's processes until stopped."""

    def __init__(self, namespace: str):
        super().__init__(daemon=True)
        self.namespace = namespace
        self.stop = threading.Event()
        self.leaks: list[tuple[str, str]] = []
        self.saw_pip = False

    def run(self):
        while not self.stop.is_set():
            for pid in procs.pids_in_namespace(self.namespace):
                for name in ("cmdline", "environ"):
                    try:
                        data = Path(f"/proc/{pid}/{name}").read_bytes()
                    except OSError:
                        continue   # the process ended between the listing and the read
                    text = data.replace(b"\0", b" ").decode(errors="replace")
                    if name == "cmdline" and " -m pip install" in text:
                        self.saw_pip = True
                    if TOKEN in text:
                        self.leaks.append((name, text))
            self.stop.wait(0.05)


@pytest.mark.fleet
def test_index_token_is_in_no_output_process_or_file(tmp_path):
    catalog = make_catalog(tmp_path / "graphs")
    with fleet(tmp_path / "fleet", "nano=1") as sim:
        state = json.loads((sim.dir / "fleet.json").read_text())
        sampler = ProcessSampler(state["hosts"][0]["namespace"])
        sampler.start()
        try:
            run = playbook(TEST_PLAYBOOKS / "env_roles.yml", [sim.inventory, FLEET_VARS],
                           "-e", f"jetson_env_pip_index_url={INDEX_URL}", "-vvv",
                           env={"ENGINE_TEST_CATALOG": str(catalog)})
        finally:
            sampler.stop.set()
            sampler.join()
        assert run.rc != 0, run.out[-3000:]
        leaked = [line for line in run.out.splitlines() if TOKEN in line or "ci-builder" in line]
        assert leaked == []
        # The failure says what failed and what to do, with the credentials masked.
        assert "pip could not install the pinned packages" in run.out, run.out[-3000:]
        assert "jetson_env_pip_index_url http://***@127.0.0.1:9/simple" in run.out
        assert "leave jetson_env_pip_index_url empty" in run.out
        # The sampler really watched pip run, and never saw the token.
        assert sampler.saw_pip, "pip never ran on the device: the check saw nothing"
        assert sampler.leaks == []
        # Nothing left on the device holds it (the 0600 config file was removed).
        left = sim.shell("nano-1", f"grep -rlsF -- {TOKEN} {DEVICE_DIRS}; echo rc=$?")
        assert left.stdout.strip() == "rc=1", left.stdout
        assert not sim.exists("nano-1", "/opt/trt-builder/.pip-index.conf")


# -- a whole run with a credentialed index that works ------------------------------------------
# A JetPack 5 Xavier: its builds take the ONNX path, so its environment is the small ONNX pin
# set (no TensorFlow), which the index below serves.
ONNX_FLEET = "xavier@35.4.1=1"
ONNX_PIN_SET = "simulated-onnx-cp38"
USER, PASSWORD = "ci-builder", "SIMpw-0d9c8b7a6f5e4d3c"
PROJECT = re.compile(r"[-_.]+")


class CredentialedIndex:
    """A PEP 503 simple index of one wheelhouse directory on the host's loopback (the
    simulated devices share its network) that answers only requests carrying its user and
    password (HTTP basic auth, as pip sends them from the index URL's user info)."""

    def __init__(self, wheelhouse: Path):
        self.files = {path.name: path for path in wheelhouse.glob("*.whl")}
        self.served: list[str] = []
        self.refused: list[str] = []
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.headers.get("Authorization") != expected:
                    index.refused.append(self.path)
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="simulated index"')
                    self.end_headers()
                    return
                body = index.answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/octet-stream"
                                 if self.path.startswith("/files/") else "text/html")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://{}:{}@127.0.0.1:{}/simple/".format(
            USER, PASSWORD, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> bytes | None:
        parts = [part for part in path.split("/") if part]
        if len(parts) == 2 and parts[0] == "simple":
            links = "".join(
                '<a href="/files/{0}#sha256={1}">{0}</a>\n'.format(
                    name, hashlib.sha256(file.read_bytes()).hexdigest())
                for name, file in sorted(self.files.items())
                if PROJECT.sub("-", name.split("-")[0]).lower() == parts[1])
            return "<html><body>\n{}</body></html>\n".format(links).encode()
        if len(parts) == 2 and parts[0] == "files" and parts[1] in self.files:
            self.served.append(parts[1])
            return self.files[parts[1]].read_bytes()
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# Below the temporary directory: pytest's trees (this test's store and logs are searched by
# name; the rest are other tests' fleets, whose device disk images are gigabytes).
SKIPPED_TEMPORARIES = re.compile(r"pytest-of-")
LARGEST = 64 * 2**20


def files_holding(text: str, *roots: Path, newer_than: Path | None = None,
                  skipped: Path | None = None) -> list[str]:
    """Every readable file below ``roots`` (modified after ``newer_than``, if given; at most
    64 MiB) that holds ``text``; a walk does not enter ``skipped`` (pytest's base directory
    given with --basetemp, which need not be named pytest-of-*)."""
    found = []
    for root in roots:
        # os.walk skips what vanishes while it walks (other runs' temporaries), links unfollowed
        walked = [] if root.is_file() else os.walk(str(root))
        paths = [root] if root.is_file() else []
        for directory, subdirs, names in walked:
            subdirs[:] = [d for d in subdirs if not SKIPPED_TEMPORARIES.match(d)
                          and Path(directory) / d != skipped]
            paths += [Path(directory) / name for name in names]
        for path in paths:
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_size > LARGEST or (
                        newer_than and info.st_mtime_ns < newer_than.stat().st_mtime_ns):
                    continue
                if text.encode() in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue  # gone or unreadable meanwhile (another run's temporaries)
    return found


@pytest.mark.fleet
def test_a_credentialed_index_url_is_in_no_output_or_file_of_a_run(
        sim_fleet, engine_runner_factory, tmp_path, tmp_path_factory, monkeypatch):
    """build_engines.yml and deploy_engines.yml at -vvv with a credentialed index URL that the
    preflight accepts and the device installs from, a URL the preflight refuses, and the
    doctor: the user name and password are in no output, no file of the store, the repository,
    the controller's temporary and log files or the device, and the URL is shown masked."""
    wheels = subprocess.run(
        [sys.executable, str(REPO / "tools" / "wheelhouse.py"), "--pin-set", ONNX_PIN_SET,
         "--json"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    index = CredentialedIndex(Path(json.loads(wheels.stdout)["dir"]))
    started = tmp_path / "started"
    started.touch()
    sim = sim_fleet(ONNX_FLEET)
    runner = engine_runner_factory(sim, ["ssd_mobilenet_v2_coco"])
    # The URL where an operator writes it: an inventory's group_vars.
    secret_vars = copy_fleet_vars(tmp_path / "secret_vars")
    for path in (secret_vars / "group_vars").iterdir():
        path.unlink()
    (secret_vars / "group_vars" / "all.yml").write_text(yaml.safe_dump(
        {"jetson_env_pip_index_url": index.url}))
    runner.inventories.append(secret_vars)
    controller_temp = tmp_path / "ansible-local-tmp"
    log = tmp_path / "ansible.log"
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(controller_temp))
    monkeypatch.setenv("ANSIBLE_LOG_PATH", str(log))
    host = sim.names[0]
    outputs = {}
    try:
        build = runner.run("-vvv")
        outputs["build"] = build.output
        assert build.returncode == 0, build.describe()
        assert build.rows_by("built") == [(host, "ssd_mobilenet_v2_coco")], build.describe()
        # The device installed its environment from the index, with the credentials.
        assert set(index.served) == set(index.files), (index.served, index.refused)
        command = runner.command("-vvv")
        command[1] = command[1].replace("build_engines.yml", "deploy_engines.yml")
        deployed = subprocess.run(command, cwd=REPO, env=runner.environment(),
                                  capture_output=True, text=True, timeout=600, check=False)
        outputs["deploy"] = deployed.stdout + deployed.stderr
        assert deployed.returncode == 0, outputs["deploy"][-3000:]
        # A value the preflight refuses (a trailing newline): named, masked.
        (secret_vars / "group_vars" / "all.yml").write_text(yaml.safe_dump(
            {"jetson_env_pip_index_url": index.url + "\n"}))
        refused = runner.run("-vvv")
        outputs["refused"] = refused.output
        assert refused.returncode != 0
        masked = "'{}' contains a control character".format(
            index.url.replace(f"{USER}:{PASSWORD}", "***") + "\\n")
        assert masked in refused.output, refused.describe()
        doctor = subprocess.run(
            [sys.executable, str(REPO / "tools" / "doctor.py"), "-i", str(sim.inventory),
             "-i", str(FLEET_VARS), "-i", str(secret_vars)], cwd=REPO,
            env=runner.environment(), capture_output=True, text=True, timeout=300, check=False)
        outputs["doctor"] = doctor.stdout + doctor.stderr
        assert "{}: ".format(host) in outputs["doctor"], outputs["doctor"]  # it probed the host
    finally:
        index.close()
    # The check can see the credentials where they are meant to be.
    assert files_holding(PASSWORD, secret_vars)
    for secret in (PASSWORD, f"{USER}:"):
        leaked = {name: [line for line in text.splitlines() if secret in line]
                  for name, text in outputs.items()}
        assert all(lines == [] for lines in leaked.values()), leaked
        holding = files_holding(secret, runner.store, log, controller_temp, runner.log_dir,
                                REPO, Path(tempfile.gettempdir()), Path.home() / ".ansible",
                                newer_than=started, skipped=tmp_path_factory.getbasetemp())
        assert holding == [], {path: [line[:400] for line in Path(path).read_text(
            errors="replace").splitlines() if secret in line][:5] for path in holding}
        left = sim.ssh(host, f"grep -rlsF -- {secret} {DEVICE_DIRS}; echo rc=$?")
        assert left.stdout.strip() == "rc=1", left.stdout
    assert log.stat().st_size > 0 and runner.store.is_dir()
