"""DIR/inventory.yml and DIR/known_hosts of a simulated fleet (host key checking stays on)."""

import json
import shlex

# Pin sets (roles/jetson_env/vars/main.yml) for devices on their JetPack's Python, per engine
# path: "uff" becomes the host's jetson_env_pin_set (the set with TensorFlow), "onnx" its
# jetson_env_onnx_pin_set (what a device whose builds are all ONNX gets; roles/jetson_env picks
# between them). JetPack 4 (3.6) only has UFF (TensorRT < 8.4); JetPack 6 (3.10) and 7 (3.12)
# only ONNX (TensorRT 10 has no UFF parser), so their ONNX set is their only one. Devices on
# the host's Python (the fallback, or `up --host-python`) keep the fleet's defaults
# (tests/integration/fleet_vars: simulated-cp311, simulated-onnx-cp311).
SIMULATED_PIN_SETS = {
    "3.6": {"uff": "simulated-cp36"},
    "3.8": {"uff": "simulated-cp38", "onnx": "simulated-onnx-cp38"},
    "3.10": {"uff": "simulated-onnx-cp310", "onnx": "simulated-onnx-cp310"},
    "3.12": {"uff": "simulated-onnx-cp312", "onnx": "simulated-onnx-cp312"},
}
PIN_SET_VARIABLES = (("uff", "jetson_env_pin_set"), ("onnx", "jetson_env_onnx_pin_set"))


def _scalar(value):
    """JSON scalars are valid YAML flow scalars; the system python has no PyYAML."""
    return json.dumps(value)


def known_hosts_text(hosts):
    """hosts: [{"address", "port", "host_key": [type, base64]}]"""
    return "".join("[{}]:{} {} {}\n".format(h["address"], h["port"], *h["host_key"])
                   for h in hosts)


def inventory_text(fleet_dir, hosts, private_key, known_hosts):
    """YAML inventory: one group per platform kind, every connection variable per host."""
    ssh_args = " ".join(shlex.quote(arg) for arg in (
        "-o", "UserKnownHostsFile={}".format(known_hosts),
        "-o", "StrictHostKeyChecking=yes",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10"))
    lines = ["# SIMULATED Jetson fleet in {} (tests/fleet/simfleet.py); rewritten on every `up`."
             .format(fleet_dir), "all:", "  children:"]
    groups = {}
    for host in hosts:
        groups.setdefault(host["group"], []).append(host)
    for group in sorted(groups):
        lines += ["    {}:".format(group), "      hosts:"]
        for host in groups[group]:
            variables = [
                ("ansible_host", host["address"]),
                ("ansible_port", host["port"]),
                ("ansible_user", "root"),
                ("ansible_ssh_private_key_file", str(private_key)),
                ("ansible_python_interpreter", "/usr/bin/python3"),
                ("ansible_ssh_common_args", ssh_args),
            ]
            if host.get("python"):   # which Python the device runs (reports can show it)
                variables += [("simjetson_python", host["python"]["version"]),
                              ("simjetson_python_fallback", host["python"]["fallback"])]
                if host["python"]["build"]:   # what that Python can install
                    pin_sets = SIMULATED_PIN_SETS.get(host["python"]["version"], {})
                    variables += [(variable, pin_sets[path]) for path, variable
                                  in PIN_SET_VARIABLES if path in pin_sets]
            lines.append("        {}:".format(host["name"]))
            lines += ["          {}: {}".format(key, _scalar(value)) for key, value in variables]
    return "\n".join(lines) + "\n"
