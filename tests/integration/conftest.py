"""Running the real `ansible-playbook build_engines.yml` against a simulated fleet.

`EngineRun` drives one playbook run (live output, so a test can act in the middle of it)
and parses what a user sees: the play recap, the engine summary table printed by the
engine_summary callback, and which (host, model) pairs went through the build task.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from controller import runlock

REPO = Path(__file__).resolve().parents[2]
FLEET_VARS = REPO / "tests" / "integration" / "fleet_vars"
MAKE_GRAPHS = REPO / "tests" / "graphs" / "make_ssd_graphs.py"
PYTHON_BIN = Path(sys.executable).parent

RECAP_LINE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
TASK_LINE = re.compile(r"^TASK \[(.+?)\]")
ITEM_RESULT = re.compile(r"^(ok|changed|failed): \[([^\]]+)\].*\(item=([^)]+)\)")
BUILD_TASK_PREFIX = "engine_build : Build the engines"
SUMMARY_BANNER = "ENGINE SUMMARY"


def run_lock_renewers(store):
    """Renewer processes of the store's run lock (python3 -m controller.lease renew STORE)."""
    listing = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True,
                             check=True).stdout
    return [line for line in listing.splitlines()
            if "controller.lease renew {} ".format(store) in line]


def wait_until_the_run_let_go(store):
    """True once the store's run lock is gone and its renewer ended. A build's report releases
    the lock; a deploy's goes with its ansible-playbook process (the renewer removes it
    within runlock.CHECK_SECONDS)."""
    deadline = time.monotonic() + 3 * runlock.CHECK_SECONDS
    while (Path(store) / runlock.RUN_LOCK_NAME).exists() or run_lock_renewers(store):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class EngineRun:
    """Output of one ansible-playbook run, parsed (the whole output is also in ``log``)."""

    def __init__(self, returncode, output, seconds, log):
        self.returncode = returncode
        self.output = output
        self.seconds = seconds
        self.log = log

    def recap(self):
        """host -> {"ok", "changed", "unreachable", "failed"} from the PLAY RECAP."""
        result = {}
        in_recap = False
        for line in self.output.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap = True
                continue
            match = RECAP_LINE.match(line) if in_recap else None
            if match:
                ok, changed, unreachable, failed = (int(g) for g in match.groups()[1:])
                result[match.group(1)] = {"ok": ok, "changed": changed,
                                          "unreachable": unreachable, "failed": failed}
        return result

    def builds(self):
        """Sorted (host, model) pairs that ran the device build command in this run."""
        pairs = []
        in_build_task = False
        for line in self.output.splitlines():
            task = TASK_LINE.match(line)
            if task:
                in_build_task = task.group(1).startswith(BUILD_TASK_PREFIX)
                continue
            item = ITEM_RESULT.match(line) if in_build_task else None
            if item:  # an item is one builder process, labelled with its models
                pairs += [(item.group(2), model) for model in item.group(3).split(", ")]
        return sorted(pairs)

    def summary(self):
        """The engine summary table: list of {"host", "model", "status", "detail"}."""
        lines = self.output.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith(SUMMARY_BANNER)]
        if not starts:
            return []
        rows = []
        header = None
        for line in lines[starts[-1] + 1:]:
            if line.startswith("HOST"):
                header = line
                continue
            if header is None or not line.strip() or re.match(r"^\d+ row\(s\)", line):
                continue
            # Columns start where their header word starts; the last one runs to the end.
            starts = [(m.group().lower(), m.start()) for m in re.finditer(r"\S+", header)]
            ends = [start for _, start in starts[1:]] + [None]
            row = {name: line[start:end].strip() for (name, start), end in zip(starts, ends)}
            row["platform_id"] = row.pop("platform", None)
            rows.append(row)
        return rows

    def rows_by(self, status):
        return sorted((r["host"], r["model"]) for r in self.summary() if r["status"] == status)

    def describe(self):
        return "exit {} after {:.1f} s; whole output in {}; last lines:\n{}".format(
            self.returncode, self.seconds, self.log, "\n".join(self.output.splitlines()[-60:]))


class EngineBuildRunner:
    """`ansible-playbook build_engines.yml` for one fleet, catalog and store."""

    def __init__(self, fleet, catalog, store, models, log_dir):
        self.fleet = fleet
        self.catalog = Path(catalog)
        self.store = Path(store)
        self.models = list(models)
        self.inventories = [fleet.inventory]
        self.log_dir = Path(log_dir)
        self.runs = 0

    @property
    def signing_key(self):
        """engine_signing_key of this store's runs (created by the first build)."""
        return self.store.parent / "signing" / "engine-signing.key"

    playbook = "build_engines.yml"

    def deploy_runner(self):
        """deploy_engines.yml with the same inventories, catalog and store (its logs next to
        the build's, numbered apart)."""
        deploy = EngineBuildRunner(self.fleet, self.catalog, self.store, self.models,
                                   self.log_dir)
        deploy.playbook = "deploy_engines.yml"
        deploy.inventories = list(self.inventories)
        deploy.runs = 100
        return deploy

    def command(self, *args, extra_vars=None):
        variables = {"engine_models": self.models}
        variables.update(extra_vars or {})
        command = [str(PYTHON_BIN / "ansible-playbook"), str(REPO / self.playbook)]
        for inventory in self.inventories + [FLEET_VARS]:
            command += ["-i", str(inventory)]
        return command + ["-e", json.dumps(variables), *args]

    def environment(self):
        env = dict(os.environ)
        env.update({
            "PATH": "{}:{}".format(PYTHON_BIN, env.get("PATH", "")),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ENGINE_TEST_CATALOG": str(self.catalog),
            "ENGINE_TEST_STORE": str(self.store),
            "ENGINE_TEST_SIGNING_KEY": str(self.signing_key),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def run(self, *args, extra_vars=None, on_line=None, timeout=900, registered=None):
        """Run the playbook; ``on_line(line)`` sees each output line as it is printed;
        ``registered``: a file that gets every registered result (callback_plugins/)."""
        started = time.monotonic()
        lines = []
        env = self.environment()
        if registered is not None:
            env.update({"ENGINE_TEST_REGISTERED": str(registered),
                        "ANSIBLE_CALLBACK_PLUGINS": "{}:{}".format(
                            REPO / "plugins" / "callback", REPO / "tests" / "integration"
                            / "callback_plugins"),
                        "ANSIBLE_CALLBACKS_ENABLED": "engine_summary, fork_gc, "
                                                     "registered_results"})
        with subprocess.Popen(
            self.command(*args, extra_vars=extra_vars), cwd=str(REPO), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True,
        ) as process:
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if on_line is not None:
                    on_line(lines[-1])
                if time.monotonic() - started > timeout:
                    process.kill()
                    raise AssertionError("ansible-playbook ran over {} s:\n{}".format(
                        timeout, "\n".join(lines[-60:])))
            returncode = process.wait()
        self.runs += 1
        log = self.log_dir / "run-{:02d}.log".format(self.runs)
        log.write_text("\n".join(lines) + "\n")
        return EngineRun(returncode, "\n".join(lines), time.monotonic() - started, log)


def make_catalog(directory, models):
    """Generate the SSD test graphs of ``models`` and their catalog with real TensorFlow."""
    command = [sys.executable, str(MAKE_GRAPHS), str(directory), "--no-run"]
    for model in models:
        command += ["--variant", model]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    catalog = Path(directory) / "models.yml"
    assert set(yaml.safe_load(catalog.read_text())["models"]) == set(models)
    return catalog


@pytest.fixture(scope="module")
def fleet(request, module_sim_fleet):
    """The test module's simulated fleet, as its FLEET says (e.g. "nano=1,tx2=1")."""
    return module_sim_fleet(request.module.FLEET)


@pytest.fixture(scope="module")
def runner(request, fleet, engine_runner_factory):
    """build_engines.yml on the module's fleet, with its MODELS (or its one MODEL)."""
    models = getattr(request.module, "MODELS", None) or [request.module.MODEL]
    return engine_runner_factory(fleet, models)


@pytest.fixture(scope="module")
def engine_runner_factory(tmp_path_factory):
    """Factory: (fleet, models) -> EngineBuildRunner with fresh graphs, catalog and store."""
    made = []

    def factory(fleet, models):
        graphs = tmp_path_factory.mktemp("graphs")
        made.append(graphs)
        store = tmp_path_factory.mktemp("store") / "engines"
        logs = tmp_path_factory.mktemp("playbook-logs")
        return EngineBuildRunner(fleet, make_catalog(graphs, models), store, models, logs)

    yield factory
    for directory in made:
        shutil.rmtree(directory, ignore_errors=True)
