"""Package index credentials never show: not in Ansible's output, not in the device's process
list, not in a file left on the device, also when the install fails.

The env roles run on a simulated device with jetson_env_pip_index_url carrying a token; the
index refuses connections (nothing listens on port 9 of the device's loopback), so pip fails
after its retries. A sampler on the host reads the command line and environment of every
process of the device's mount namespace while the play runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fleet import procs

from tests.integration.envside import (
    FLEET_VARS,
    TEST_PLAYBOOKS,
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
                           "-e", f"jetson_env_pip_index_url={INDEX_URL}", "-v",
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
