"""Helpers for the env side's integration tests: a simulated fleet, ansible runs, device shells.

The fleet is driven through its CLI (tests/fleet/simfleet.py up/down), the playbooks through
the real ansible-playbook of the controller venv, with the repository's ansible.cfg.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FLEET_VARS = REPO / "tests" / "integration" / "fleet_vars"
TEST_PLAYBOOKS = REPO / "tests" / "integration" / "playbooks"
SIMFLEET = REPO / "tests" / "fleet" / "simfleet.py"


def tool(name: str) -> str:
    """ansible-playbook / ansible of the venv running pytest (falls back to PATH)."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


@contextlib.contextmanager
def fleet(directory: Path, hosts: str, *up_args: str):
    """A running simulated fleet, always torn down (up_args: more `simfleet.py up` options)."""
    up = subprocess.run([sys.executable, str(SIMFLEET), "up", "--dir", str(directory),
                         "--hosts", hosts, *up_args], capture_output=True, text=True,
                        check=False)
    try:
        if up.returncode != 0:
            raise RuntimeError(f"simfleet up failed: {up.stdout}\n{up.stderr}")
        yield Fleet(directory)
    finally:
        subprocess.run([sys.executable, str(SIMFLEET), "down", "--dir", str(directory)],
                       capture_output=True, text=True, check=False)


class Fleet:
    def __init__(self, directory: Path):
        self.dir = directory
        self.inventory = directory / "inventory.yml"
        data = yaml.safe_load(self.inventory.read_text())
        self.hosts = {}
        self.groups = {}
        for group, body in data["all"]["children"].items():
            for name, host_vars in (body.get("hosts") or {}).items():
                self.hosts[name] = host_vars
                self.groups[name] = group

    def shell(self, host: str, command: str) -> subprocess.CompletedProcess:
        """Run a shell command on a device over real ssh (the fleet's key and known_hosts)."""
        host_vars = self.hosts[host]
        argv = ["ssh", "-p", str(host_vars["ansible_port"]), "-i",
                host_vars["ansible_ssh_private_key_file"], "-o", "BatchMode=yes",
                *shlex.split(host_vars["ansible_ssh_common_args"]),
                f"{host_vars['ansible_user']}@{host_vars['ansible_host']}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def exists(self, host: str, path: str) -> bool:
        result = self.shell(host, f"test -e {shlex.quote(path)} && echo yes || echo no")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip() == "yes"


def make_catalog(out_dir: Path, variants=("ssd_mobilenet_v2_coco",)) -> Path:
    """Generate SSD test graphs + models.yml with the repository's generator (real TensorFlow)."""
    argv = [sys.executable, str(REPO / "tests" / "graphs" / "make_ssd_graphs.py"), str(out_dir)]
    for variant in variants:
        argv += ["--variant", variant]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out_dir / "models.yml"


def copy_fleet_vars(dest: Path) -> Path:
    """A private copy of tests/integration/fleet_vars that a test may edit."""
    shutil.copytree(FLEET_VARS, dest)
    return dest


class Run:
    def __init__(self, result: subprocess.CompletedProcess, seconds: float):
        self.rc = result.returncode
        self.out = result.stdout + result.stderr
        self.seconds = seconds

    def recap(self) -> dict:
        """PLAY RECAP counters per host: {host: {'ok': n, 'changed': n, ...}}."""
        recap = {}
        lines = self.out.split("PLAY RECAP")[-1].splitlines()
        for line in lines[1:]:
            if ":" not in line or "=" not in line:
                continue
            host, counters = line.split(":", 1)
            recap[host.strip()] = {k: int(v) for k, v in
                                   (item.split("=") for item in counters.split())}
        return recap


def playbook(playbook_path: Path, inventories, *args: str, env: dict | None = None,
             timeout: int = 900) -> Run:
    argv = [tool("ansible-playbook"), str(playbook_path)]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    argv += list(args)
    run_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                   ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")
    run_env.update(env or {})
    with contextlib.ExitStack() as cleanup:
        if "ENGINE_TEST_STORE" not in run_env:
            # The preflight takes the store's run lock: a store of this run's own, never the
            # repo's, removed afterwards (the test that wants the store passes its own).
            run_env["ENGINE_TEST_STORE"] = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="engine-store-"))
        start = time.monotonic()
        result = subprocess.run(argv, cwd=REPO, env=run_env, capture_output=True, text=True,
                                timeout=timeout, check=False)
    return Run(result, time.monotonic() - start)


def adhoc_json(pattern: str, inventories, module: str, module_args: str = "",
               *extra_args: str, env: dict | None = None) -> dict:
    """Run one module ad hoc; {host: result dict} from the per-host files of --tree."""
    with tempfile.TemporaryDirectory() as tree:
        argv = [tool("ansible"), pattern, "-m", module, "--tree", tree]
        if module_args:
            argv += ["-a", module_args]
        for inventory in inventories:
            argv += ["-i", str(inventory)]
        argv += list(extra_args)
        run_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                       ANSIBLE_CALLBACKS_ENABLED="")
        run_env.update(env or {})
        result = subprocess.run(argv, cwd=REPO, env=run_env, capture_output=True, text=True,
                                timeout=300, check=False)
        hosts = {path.name: json.loads(path.read_text()) for path in Path(tree).iterdir()}
    assert hosts, result.stdout + result.stderr
    return hosts
