#!/usr/bin/env python3
"""What users do today, device after device: copy graphs and build script, build, copy back.

    python3 bench/manual_baseline.py --inventory FLEETDIR/inventory.yml --catalog models.yml \
        --models m1,m2 --out DIR [--python /opt/trt-builder/venv/bin/python]

For each device of the inventory, in turn, with plain ssh/scp (no multiplexing, the same key
and known_hosts as Ansible):
  1. ssh: make the work directory;
  2. scp: the builder package (the "build script"), the catalog and the graphs;
  3. ssh: `python -m builder build MODEL ...` for each model, with the options the playbook
     uses for that device's group (tests/integration/fleet_vars);
  4. scp: each TRT_<model>.bin back to DIR/<host>/<model>/.
The device's TensorFlow environment is assumed installed (users install it once by hand).
No waiting other than for the commands themselves. Exit status: 0 when every engine came back.
"""

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
FLEET_VARS = REPO_ROOT / "tests" / "integration" / "fleet_vars" / "group_vars"
REMOTE_DIR = "/root/manual"
DEFAULT_PYTHON = "/opt/trt-builder/venv/bin/python"


def inventory_hosts(inventory_path):
    """[(name, group, vars)] in inventory order."""
    data = yaml.safe_load(Path(inventory_path).read_text())
    hosts = []
    for group, body in (data["all"].get("children") or {}).items():
        for name, variables in ((body or {}).get("hosts") or {}).items():
            hosts.append((name, group, variables))
    if not hosts:
        raise SystemExit("error: {}: no host under all.children.<group>.hosts".format(
            inventory_path))
    return hosts


def build_options(group):
    """The playbook's options for a group: group_vars/all.yml overridden by <group>.yml."""
    options = {}
    for name in ("all.yml", group + ".yml"):
        path = FLEET_VARS / name
        if path.is_file():
            options.update(yaml.safe_load(path.read_text()) or {})
    return ["--precision", str(options.get("engine_precision", "fp16")),
            "--workspace-mib", str(options.get("engine_workspace_mib", 512)),
            "--max-batch", str(options.get("engine_max_batch", 1))]


def ssh_base(variables, program):
    port_flag = "-p" if program == "ssh" else "-P"
    return ([program, "-q", "-i", variables["ansible_ssh_private_key_file"],
             port_flag, str(variables["ansible_port"]), "-o", "BatchMode=yes"]
            + shlex.split(variables.get("ansible_ssh_common_args", "")))


def target(variables):
    return "{}@{}".format(variables.get("ansible_user", "root"), variables["ansible_host"])


def run(command):
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        print("failed (exit {}): {}\n{}".format(result.returncode, " ".join(command),
                                               (result.stderr or result.stdout).strip()[-2000:]),
              file=sys.stderr)
    return result.returncode == 0


def stage(catalog_path, models):
    """A directory holding what gets copied: builder/, the catalog, the graphs."""
    catalog_path = Path(catalog_path)
    catalog = yaml.safe_load(catalog_path.read_text())
    staging = Path(tempfile.mkdtemp(prefix="manual-baseline-"))
    shutil.copytree(REPO_ROOT / "builder", staging / "builder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(catalog_path, staging / "models.yml")
    for model in models:
        entry = catalog["models"][model]
        for key in ("graph", "pipeline_config"):
            if entry.get(key):
                (staging / entry[key]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(catalog_path.parent / entry[key], staging / entry[key])
    return staging


def one_device(name, group, variables, *, staging, models, python, out_dir):
    ssh = ssh_base(variables, "ssh") + [target(variables)]
    scp = ssh_base(variables, "scp")
    ok = run(ssh + ["mkdir -p {}".format(REMOTE_DIR)])
    ok = ok and run(scp + ["-r"] + [str(p) for p in sorted(staging.iterdir())]
                    + ["{}:{}/".format(target(variables), REMOTE_DIR)])
    built = 0
    for model in models:
        command = "cd {} && {} -m builder build {} --catalog models.yml --out {} {}".format(
            REMOTE_DIR, python, shlex.quote(model), shlex.quote(model),
            " ".join(build_options(group)))
        destination = out_dir / name / model
        destination.mkdir(parents=True, exist_ok=True)
        if ok and run(ssh + [command]) and run(scp + ["{}:{}/{}/TRT_{}.bin".format(
                target(variables), REMOTE_DIR, model, model), str(destination) + "/"]):
            built += 1
    return built


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--models", required=True, help="comma-separated model names")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="the device's TensorFlow python")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    staging = stage(args.catalog, models)
    expected = 0
    engines = 0
    try:
        for name, group, variables in inventory_hosts(args.inventory):
            started = time.monotonic()
            built = one_device(name, group, variables, staging=staging, models=models,
                               python=args.python, out_dir=args.out)
            print("{}: {}/{} engines in {:.1f} s".format(
                name, built, len(models), time.monotonic() - started), flush=True)
            expected += len(models)
            engines += built
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print("{}/{} engines copied back to {}".format(engines, expected, args.out))
    return 0 if engines == expected else 1


if __name__ == "__main__":
    sys.exit(main())
