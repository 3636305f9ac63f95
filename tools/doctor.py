#!/usr/bin/env python3
"""Is this controller and this inventory ready for `ansible-playbook build_engines.yml`?

    .venv/bin/python tools/doctor.py [-i inventory/jetsons] [-i MORE] [--min-free-mib 2048]
    make doctor [INVENTORY=inventory/jetsons]

Checks, in order: ansible-core and Jinja2 on the controller (the playbooks' version gate:
2.16.x, 3.1.6+), the inventory parses, every host's
key is in the known_hosts file its SSH connection uses, the host answers, its Python is one
ansible-core 2.16 manages (2.7, 3.5 - 3.12) and the builder runs on (3.6+: JetPack 4 has 3.6,
JetPack 7 3.12), JetPack is installed (and which release) with a TensorRT the builder knows
(5.x to 8.6, 10.x, 11.x; which one, and where it is not the JetPack's: TensorRT 11.4.1 on
JetPack 7.2) and a pinned environment for that JetPack (controller/pin_sets.py, as the plan
checks it), the disk holding the builder's directory has room, and the model catalog each
host uses is valid. One line per host and problem; the exit code is 1 when
anything would stop a run, 0 when every host is ready.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO_ROOT))
from builder.commands.check import catalog_report  # noqa: E402  (needs REPO_ROOT on sys.path)
from builder.platform.detect import (  # noqa: E402
    L4T_RELEASES,
    parse_nv_tegra_release,
    strongly_typed,
    tensorrt_from_dpkg,
    tensorrt_generation,
    upstream_version,
    version_tuple,
)
from builder.trt import enginepath  # noqa: E402
from controller import pin_sets, schema, versions  # noqa: E402
from controller.secrets import mask_url  # noqa: E402

# ansible-core 2.16's target Pythons (its support matrix); the builder needs 3.6+.
TARGET_PYTHONS = ((2, 7), (3, 5), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12))
BUILDER_PYTHON = (3, 6)
DEFAULT_MIN_FREE_MIB = 2048               # venv with TensorFlow ~1 GB, wheels, work files
DEFAULT_CATALOG = "models/models.yml"     # inventory/jetsons/group_vars/all.yml


class Report:
    """Prints the doctor's lines. A line may quote Ansible's own messages (an inventory file's
    line that does not parse): the user info of every URL in it is masked, since a package
    index URL may carry credentials (controller/secrets.py)."""

    def __init__(self):
        self.problems = 0

    def problem(self, who, text):
        self.problems += 1
        print(mask_url("{}: {}".format(who, text)), flush=True)

    def ok(self, who, text):
        print(mask_url("{}: ok, {}".format(who, text)), flush=True)


def _ansible_env():
    """The environment of the doctor's own Ansible calls. Their output is read, not shown:
    it is kept out of a log file (ANSIBLE_LOG_PATH), since the inventory listing holds every
    host variable, a package index URL's credentials included."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
               ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
               ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True",
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="False")
    env["PATH"] = "{}:{}".format(BIN, env.get("PATH", ""))
    env.pop("ANSIBLE_LOG_PATH", None)
    return env


def _tool(name):
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def check_ansible(report):
    try:
        import ansible.release  # noqa: F401, PLC0415
    except ImportError:
        report.problem("controller", "ansible-core is not installed for {}. Install it: {} -m "
                       "pip install -r requirements/controller.txt -c "
                       "requirements/constraints.txt".format(sys.executable, sys.executable))
        return
    # The playbooks' own version gate (the preflight's): ansible-core 2.16.x, Jinja2 >= 3.1.6.
    for problem in versions.version_problems(versions.installed_versions()):
        report.problem("controller", problem)


def load_inventory(report, inventories):
    """{host: hostvars} from ansible-inventory, or None when an inventory does not parse."""
    argv = [_tool("ansible-inventory"), "--list"]
    for inventory in inventories:
        argv += ["-i", inventory]
    result = subprocess.run(argv, cwd=REPO_ROOT, env=_ansible_env(), capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        # Ansible tries every inventory plugin; the YAML plugin's complaint is the useful one.
        start = next((i for i, line in enumerate(lines) if "yaml plugin" in line), None)
        # (Ansible wraps its warnings at 80 columns: the lines are one message.)
        lines = lines[start:start + 8] if start is not None else lines[-4:]
        report.problem("inventory", "{} does not parse: {}. Fix that file (YAML inventory: "
                       "https://docs.ansible.com/ansible/2.16/inventory_guide/)".format(
                           " ".join(inventories), " ".join(" ".join(lines).split())[:600]))
        return None
    data = json.loads(result.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts = sorted(set(hostvars) | {h for group in data.values() if isinstance(group, dict)
                                    for h in group.get("hosts", [])})
    if not hosts:
        report.problem("inventory", "{} lists no host. Add your devices to it (see "
                       "inventory/jetsons/hosts.yml)".format(" ".join(inventories)))
    return {host: hostvars.get(host, {}) for host in hosts}


def _known_hosts_files(hostvars):
    """The known_hosts files the host's ssh uses (UserKnownHostsFile, else ~/.ssh)."""
    args = " ".join(str(hostvars.get(key, "")) for key in
                    ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
    words = shlex.split(args)
    files = []
    for index, word in enumerate(words):
        option = word
        if word == "-o" and index + 1 < len(words):
            option = words[index + 1]
        key, _, value = option.partition("=")
        if key.strip().lower() == "userknownhostsfile" and value:
            files += [os.path.expanduser(v) for v in value.split()]
    return files or [os.path.expanduser("~/.ssh/known_hosts")]


def _address(host, hostvars):
    return str(hostvars.get("ansible_host", host)), int(hostvars.get("ansible_port", 22))


def check_known_hosts(report, host, hostvars):
    address, port = _address(host, hostvars)
    name = address if port == 22 else "[{}]:{}".format(address, port)
    files = _known_hosts_files(hostvars)
    for path in files:
        if os.path.isfile(path):
            found = subprocess.run(["ssh-keygen", "-F", name, "-f", path], capture_output=True,
                                   text=True, check=False)
            if found.returncode == 0 and found.stdout.strip():
                return True
    keys = "{}.hostkeys".format(host)
    report.problem(host, "{} is not in {}: ansible would refuse it (host key checking is on). "
                   "Fetch its keys: `ssh-keyscan -p {} {} > {} && ssh-keygen -lf {}`, compare "
                   "the fingerprints with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run "
                   "on the device itself (console or a trusted session), then `cat {} >> {}`"
                   .format(name, files[0], port, shlex.quote(address), keys, keys, keys,
                           files[0]))
    return False


PROBE = r"""
py={python}
if command -v "$py" >/dev/null 2>&1; then
  echo "python=$("$py" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))' 2>&1)"
else
  echo "python=missing"
fi
if [ -r /etc/nv_tegra_release ]; then echo "tegra=$(head -n 1 /etc/nv_tegra_release)"; fi
echo "l4tcore=$(dpkg-query -W -f='${{Version}}' nvidia-l4t-core 2>/dev/null)"
echo "tensorrt=$(dpkg-query -W -f='${{db:Status-Abbrev}}|${{Package}}|${{Version}};' tensorrt \
  'libnvinfer[0-9]*' 2>/dev/null)"
dir={root_dir}
while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
echo "disk=$dir $(df -Pk "$dir" | tail -n 1)"
"""


def _python_of(hostvars):
    python = str(hostvars.get("ansible_python_interpreter", "") or "")
    return python if python and "{{" not in python and not python.startswith("auto") \
        else "python3"


def probe_hosts(hosts, inventories):
    """{host: result dict of the raw probe} in one ad-hoc run (no Python needed on the host)."""
    results = {}
    groups = {}
    for host, hostvars in hosts.items():
        root_dir = schema.builder_root_dir(hostvars) or schema.BUILDER_ROOT_DIR
        if "{{" in root_dir:
            root_dir = schema.BUILDER_ROOT_DIR
        script = PROBE.format(python=shlex.quote(_python_of(hostvars)),
                              root_dir=shlex.quote(root_dir))
        groups.setdefault(script, []).append(host)
    for script, members in groups.items():
        with tempfile.TemporaryDirectory() as tree:
            argv = [_tool("ansible"), ",".join(members), "-m", "ansible.builtin.raw",
                    "-a", script, "--tree", tree, "-o"]
            for inventory in inventories:
                argv += ["-i", inventory]
            subprocess.run(argv, cwd=REPO_ROOT, env=_ansible_env(), capture_output=True,
                           text=True, check=False, timeout=600)
            for host in members:
                path = Path(tree) / host
                results[host] = (json.loads(path.read_text()) if path.is_file() else
                                 {"unreachable": True, "msg": "ansible gave no result"})
    return results


def _fields(stdout):
    fields = {}
    for line in stdout.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            fields[key] = value.strip()
    return fields


def _release_row(l4t):
    """(JetPack, TensorRT, CUDA, cuDNN) of an L4T release from the detection's table, or None."""
    if l4t in L4T_RELEASES:
        return L4T_RELEASES[l4t]
    return L4T_RELEASES.get(".".join(l4t.split(".")[:2]))


def _jetpack_of(l4t):
    return (_release_row(l4t) or (None,))[0]


def _tensorrt_of(text):
    """'8.2.1' from the probe's 'ii |tensorrt|8.2.1.8-1+cuda10.2;...' (installed packages only),
    chosen as the platform detection does (tensorrt, else the highest libnvinfer<N>)."""
    packages = {}
    for item in text.split(";"):
        status, _, rest = item.partition("|")
        name, _, version = rest.partition("|")
        if status.strip() == "ii" and name.strip() and version.strip():
            packages[name.strip()] = version.strip()
    full = tensorrt_from_dpkg(packages)
    numbers = version_tuple(upstream_version(full)) if full else ()
    return ".".join(str(n) for n in numbers[:3]) if numbers else None


def _tensorrt_text(tensorrt, l4t):
    """'TensorRT 11.4.1 (strongly typed; JetPack 7.2.1 ships 10.16)' for the summary."""
    notes = []
    if strongly_typed(tensorrt) and tensorrt_generation(tensorrt)[1] is None:
        notes.append("strongly typed")   # 11.x: fp16 engines from fp16 ONNX exports
    row = _release_row(l4t) if l4t else None
    if row and version_tuple(tensorrt)[:len(version_tuple(row[1]))] != version_tuple(row[1]):
        notes.append("JetPack {} ships {}".format(row[0], row[1]))
    return "TensorRT {}{}".format(tensorrt, " ({})".format("; ".join(notes)) if notes else "")


def _pin_set_problem(host, hostvars, l4t, jetpack, tensorrt):
    """The plan's pin-set check (controller/pin_sets.py) for the engine path that
    engine_path auto takes on this TensorRT; None when the device has a pin set."""
    path = enginepath.ONNX if enginepath.can_build(
        enginepath.ONNX, version_tuple(tensorrt)) else enginepath.UFF
    problem = pin_sets.pin_set_problem(
        pin_sets.the_table(), host, path, l4t=l4t, jetpack=jetpack,
        named=str(hostvars.get(pin_sets.VARIABLES[path]) or ""))
    return problem.split(": ", 1)[1] if problem else None  # without "host X: "


def check_probe(report, host, hostvars, result, min_free_mib):
    """Problems of one host from its probe; returns its summary when it has none."""
    if result.get("unreachable") or result.get("rc", 1) != 0 and not result.get("stdout"):
        message = " ".join(str(result.get("msg") or result.get("stderr") or "").split())
        address, port = _address(host, hostvars)
        report.problem(host, "unreachable ({}): {}. Check that the device is on, that `ssh -p "
                       "{} {}@{}` works from this controller, and the inventory's connection "
                       "variables".format(address, message[:300], port,
                                          hostvars.get("ansible_user", "root"), address))
        return None
    fields = _fields(result.get("stdout", ""))
    problems = report.problems
    python = fields.get("python", "missing")
    interpreter = _python_of(hostvars)
    match = re.match(r"^(\d+)\.(\d+)\.\d+$", python)
    if not match:
        report.problem(host, "no working Python at {} ({}). Install python3 on the device, or "
                       "set ansible_python_interpreter in host_vars/{}.yml to the Python it "
                       "has".format(interpreter, python, host))
    else:
        version = (int(match.group(1)), int(match.group(2)))
        if version not in TARGET_PYTHONS:
            report.problem(host, "Python {} at {}: ansible-core 2.16 manages 2.7 and 3.5 - 3.12 "
                           "only. Point ansible_python_interpreter (host_vars/{}.yml) at a "
                           "Python in that range".format(python, interpreter, host))
        elif version < BUILDER_PYTHON:
            report.problem(host, "Python {} at {}: Ansible can manage it, but the builder "
                           "needs 3.6 or newer (JetPack 4 has 3.6). Point "
                           "ansible_python_interpreter (host_vars/{}.yml) at python3.6+"
                           .format(python, interpreter, host))
    l4t = parse_nv_tegra_release(fields.get("tegra", "")) or (
        fields.get("l4tcore", "").split("-")[0] or None)
    jetpack = _jetpack_of(l4t) if l4t else None
    tensorrt = _tensorrt_of(fields.get("tensorrt", ""))
    if l4t is None:
        report.problem(host, "no JetPack: neither /etc/nv_tegra_release nor the package "
                       "nvidia-l4t-core is there. Flash the device with JetPack (SDK Manager) "
                       "or take it out of the inventory")
    elif tensorrt is None:
        report.problem(host, "no TensorRT: dpkg lists no installed 'tensorrt' or "
                       "'libnvinfer<N>' package (L4T {}). Install JetPack's TensorRT on the "
                       "device: sudo apt-get install nvidia-jetpack (or tensorrt)".format(l4t))
    elif tensorrt_generation(tensorrt)[1] is not None:
        report.problem(host, "{}: the builder cannot build there ({}). Install a TensorRT it "
                       "knows, or take the device out of the inventory".format(
                           _tensorrt_text(tensorrt, l4t), tensorrt_generation(tensorrt)[1]))
    elif no_pins := _pin_set_problem(host, hostvars, l4t, jetpack, tensorrt):
        report.problem(host, no_pins)
    disk = fields.get("disk", "").split()
    free_mib = int(disk[4]) // 1024 if len(disk) >= 5 and disk[4].isdigit() else None
    if free_mib is None:
        report.problem(host, "could not read the free disk space ({!r})".format(
            fields.get("disk", "")))
    elif free_mib < min_free_mib:
        report.problem(host, "{} MiB free on {} (the builder's directory needs {} MiB: venv, "
                       "wheels, graphs, engines). Free space there, or set "
                       "jetson_facts_root_dir to a bigger disk".format(
                           free_mib, disk[0], min_free_mib))
    if report.problems != problems:
        return None
    return "Python {}, L4T {} = JetPack {}, {}, {} MiB free on {}".format(
        python, l4t, jetpack or "unknown (newer than this tool's table)",
        _tensorrt_text(tensorrt, l4t), free_mib, disk[0])


def catalogs_of(hosts, inventories):
    """{catalog path: [hosts]} as Ansible renders engine_catalog for each host."""
    with tempfile.TemporaryDirectory() as tree:
        # playbook_dir as in build_engines.yml's play (the sample inventory uses it).
        argv = [_tool("ansible"), "all", "-m", "ansible.builtin.debug",
                "-a", "var=engine_catalog", "--tree", tree, "-o",
                "--playbook-dir", str(REPO_ROOT / "playbooks")]
        for inventory in inventories:
            argv += ["-i", inventory]
        subprocess.run(argv, cwd=REPO_ROOT, env=_ansible_env(), capture_output=True,
                       text=True, check=False)
        catalogs = {}
        for host in hosts:
            path = Path(tree) / host
            value = json.loads(path.read_text()).get("engine_catalog") if path.is_file() else None
            if not value or "VARIABLE IS NOT DEFINED" in str(value):
                value = DEFAULT_CATALOG
            catalogs.setdefault(str(value), []).append(host)
        return catalogs


def check_catalogs(report, catalogs):
    for path, users in sorted(catalogs.items()):
        result = catalog_report(str(REPO_ROOT / path) if not os.path.isabs(path) else path)
        for error in result.get("errors", []):
            report.problem("catalog", "{} (engine_catalog of {})".format(
                error.get("text") or error, ", ".join(users)))
        if "errors" not in result:
            report.ok("catalog {}".format(path), "models {}".format(
                ", ".join(sorted(result["models"])) or "(none)"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", action="append", default=None,
                        help="inventory (repeatable, like ansible-playbook); default "
                             "inventory/jetsons")
    parser.add_argument("--min-free-mib", type=int, default=DEFAULT_MIN_FREE_MIB,
                        help="free disk needed where the builder lives (default %(default)s)")
    args = parser.parse_args(argv)
    inventories = args.inventory or ["inventory/jetsons"]
    report = Report()
    check_ansible(report)
    hosts = load_inventory(report, inventories)
    if hosts:
        known = [host for host in hosts if check_known_hosts(report, host, hosts[host])]
        results = probe_hosts({host: hosts[host] for host in known}, inventories) if known else {}
        for host in known:
            summary = check_probe(report, host, hosts[host], results[host], args.min_free_mib)
            if summary:
                report.ok(host, summary)
        check_catalogs(report, catalogs_of(hosts, inventories))
    if report.problems:
        print("doctor: {} problem(s) that would stop a run".format(report.problems))
        return 1
    print("doctor: {} host(s) ready".format(len(hosts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
