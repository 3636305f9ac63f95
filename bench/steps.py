"""One measured step: a playbook run or the manual baseline, on a fleet that is up.

Every step is measured the same way: wall time and controller CPU of the whole process tree
(measured.py), and per device, from the device's own sshd log, the remote command executions,
file transfers and bytes, plus the engine builds it performed (engine files written).
"""

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import timeline
from bench.fleet_session import REPO_ROOT, BenchError
from controller import schema

MEASURED = Path(__file__).resolve().parent / "measured.py"
BASELINE = Path(__file__).resolve().parent / "manual_baseline.py"
FLEET_VARS = REPO_ROOT / "tests" / "integration" / "fleet_vars"
# The benchmark's task timeline, enabled next to the project's callbacks (of the tree that runs).
BENCH_CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
TIMELINE_CALLBACK = "bench_timeline"
SETTLE_TIMEOUT_S = 10.0


def ansible_cfg(key, fallback=None, tree=REPO_ROOT):
    """``key`` of the [defaults] of the tree's ansible.cfg (what every run there uses)."""
    config = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    config.read(Path(tree) / "ansible.cfg")
    return config.get("defaults", key, fallback=fallback)


def ansible_playbook():
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise BenchError("ansible-playbook not found next to {} nor on PATH: run the benchmark "
                         "with the project's venv python (make venv)".format(sys.executable))
    return found


def inventory_args(fleet):
    """The inventory sources of every measured command on ``fleet``, the ping's too: the
    fleet's hosts and the simulated fleet's group_vars."""
    return ["-i", str(fleet.inventory), "-i", str(FLEET_VARS)]


_COMPILED = set()


def compile_tree(tree):
    """Write the bytecode of the tree's Python once, as any first run does on a machine that
    writes bytecode. Machines with PYTHONDONTWRITEBYTECODE set (ours) otherwise
    compile the controller package and the plugins anew in every ansible-playbook run (60 ms
    of CPU), which no user pays twice and a ping (ansible-core's bytecode is installed) never
    pays."""
    tree = Path(tree).resolve()
    if tree not in _COMPILED:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "controller"),
                        str(tree / "builder"), str(tree / "plugins")],
                       check=True, capture_output=True)
        _COMPILED.add(tree)


def _measure(command, log_path, env=None, control_dir=None, cwd=REPO_ROOT):
    result_path = Path(str(log_path) + ".json")
    args = [sys.executable, str(MEASURED), "--result", str(result_path), "--log", str(log_path)]
    if control_dir:
        args += ["--control-dir", str(control_dir)]
    status = subprocess.call(args + ["--"] + [str(c) for c in command], env=env, cwd=cwd)
    if not result_path.is_file():
        raise BenchError("measuring {} failed (exit {}), see {}".format(command[0], status,
                                                                        log_path))
    return json.loads(result_path.read_text())


def _settled_figures(fleet, mark):
    """sshd accounts a connection when it closes, shortly after the client is gone."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    previous = None
    while True:
        current = fleet.figures_since(mark)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current
        time.sleep(0.3)


def _record(label, fleet, measured, *, per_device, builds, log_path):
    hosts = len(fleet.hosts)
    total = {key: sum(d[key] for d in per_device.values())
             for key in ("commands", "file_transfers", "connections",
                         "bytes_to_device", "bytes_from_device")}
    return {
        "step": label, "devices": hosts, "rc": measured["rc"], "wall_s": measured["wall_s"],
        "controller_cpu_s": measured["cpu_s"],
        "controller_cpu_per_device_s": round(measured["cpu_s"] / hosts, 3),
        "controller_peak_rss_mib": measured.get("peak_rss_mib"),
        "controller_peak_tree_pss_mib": measured.get("peak_tree_pss_mib"),
        "commands_per_device": round(total["commands"] / hosts, 2),
        "commands_max_device": max(d["commands"] for d in per_device.values()),
        "file_transfers_per_device": round(total["file_transfers"] / hosts, 2),
        "bytes_to_device_per_device": round(total["bytes_to_device"] / hosts),
        "bytes_from_device_per_device": round(total["bytes_from_device"] / hosts),
        "builds": sum(builds.values()), "builds_by_host": builds, "per_device": per_device,
        "log": _repo_relative(log_path),
    }


def _repo_relative(path):
    """Results are committed: record paths inside the clone relative to it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(path)


def _ansible_env(control_dir, **more):
    """The environment every measured Ansible command runs with (ssh masters in control_dir,
    so measured.py can close them and count their CPU)."""
    return dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir),
                PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
                **more)


def _measured_on_fleet(fleet, command, log_path, env_for, cwd=REPO_ROOT):
    """(record inputs) of one measured Ansible command on ``fleet``: env_for(control_dir)."""
    control_dir = Path(tempfile.mkdtemp(prefix="bcp", dir="/tmp"))  # short: socket paths
    mark = fleet.mark()
    try:
        measured = _measure(command, log_path, env=env_for(control_dir), control_dir=control_dir,
                            cwd=cwd)
    finally:
        shutil.rmtree(control_dir, ignore_errors=True)
    return measured, _settled_figures(fleet, mark)


def playbook_step(label, fleet, workload, *, store_dir, scope, log_dir,
                  playbook="build_engines.yml", args=(), tree=REPO_ROOT, with_timeline=True):
    """One `ansible-playbook PLAYBOOK` run (build_engines.yml unless said), exactly as users
    run it; ``args``: more ansible-playbook arguments (--check, --forks N); ``tree``: the
    checkout whose playbooks, plugins and controller package run (bench/compare.py);
    ``with_timeline``: record the task timeline (the benchmark's own callback: off for the steps
    compared with a ping, which would pay for none)."""
    log_path = Path(log_dir) / "{}.log".format(label)
    timeline_path = Path(log_dir) / "{}.timeline.json".format(label)
    # The catalog, the store and the signing key as plain values, as a user's inventory gives
    # them (or leaves them to their defaults): the fleet's group_vars compute them with an env
    # lookup for the tests, a template the preflight would compile and run on every run
    # (bench/README.md). The key is the schema's default, as those group_vars make it.
    extra = json.dumps({"engine_models": workload.models, "engine_build_scope": scope,
                        "engine_catalog": str(workload.catalog),
                        "engine_store_dir": str(store_dir),
                        "engine_signing_key": str(
                            Path(tree) / schema.BY_NAME["engine_signing_key"].default)})
    command = [ansible_playbook(), playbook, *inventory_args(fleet), "-e", extra, *args]
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if profile_dir:  # cProfile of ansible-playbook's main process (its workers are forks)
        command = [sys.executable, "-m", "cProfile", "-o",
                   str(Path(profile_dir) / "{}.prof".format(label))] + command
    since = time.time()
    callback_dirs = [Path(tree) / "plugins" / "callback", BENCH_CALLBACKS]
    # The tree's callbacks as its ansible.cfg enables them (the environment replaces that).
    callbacks = ansible_cfg("callbacks_enabled", tree=tree).replace(" ", "") + (
        "," + TIMELINE_CALLBACK if with_timeline else "")
    compile_tree(tree)

    def env_for(control):
        return _ansible_env(
            control, ENGINE_TEST_CATALOG=str(workload.catalog), ENGINE_TEST_STORE=str(store_dir),
            ANSIBLE_CALLBACK_PLUGINS=os.pathsep.join(str(p) for p in callback_dirs),
            ANSIBLE_CALLBACKS_ENABLED=callbacks,
            BENCH_TIMELINE_FILE=str(timeline_path),
            # the tree's own controller package, before the venv's path to this clone
            PYTHONPATH=str(tree))

    measured, per_device = _measured_on_fleet(fleet, command, log_path, env_for, cwd=tree)
    builds = fleet.builds_since(since)
    record = _record(label, fleet, measured, per_device=per_device, builds=builds,
                     log_path=log_path)
    if timeline_path.is_file():
        events = json.loads(timeline_path.read_text())["events"]
        record["device_times"] = timeline.device_times(events)
        record["builder_runs"] = timeline.builder_runs(events)
    return record


def ping_step(label, fleet, log_dir, args=()):
    """`ansible all -m ansible.builtin.ping` on the same fleet, with the same ansible.cfg:
    the floor a run with one remote execution per device is compared with."""
    log_path = Path(log_dir) / "{}.log".format(label)
    command = [str(Path(ansible_playbook()).with_name("ansible")), "all", *inventory_args(fleet),
               "-m", "ansible.builtin.ping", *args]
    measured, per_device = _measured_on_fleet(fleet, command, log_path, _ansible_env)
    return _record(label, fleet, measured, per_device=per_device, builds={},
                   log_path=log_path)


def baseline_step(label, fleet, workload, log_dir):
    log_path = Path(log_dir) / "{}.log".format(label)
    out_dir = Path(log_dir) / "{}-engines".format(label)
    command = [sys.executable, BASELINE, "--inventory", fleet.inventory,
               "--catalog", workload.catalog, "--models", ",".join(workload.models),
               "--out", out_dir]
    mark = fleet.mark()
    since = time.time()
    measured = _measure(command, log_path)
    per_device = _settled_figures(fleet, mark)
    builds = fleet.builds_since(since)
    shutil.rmtree(out_dir, ignore_errors=True)
    return _record(label, fleet, measured, per_device=per_device, builds=builds,
                   log_path=log_path)
