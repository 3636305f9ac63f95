"""DIR/inventory.yml and DIR/known_hosts of a simulated fleet (host key checking stays on)."""

import json
import shlex

# Pin sets (roles/jetson_env/vars/main.yml) for devices on their JetPack's Python; others
# keep the fleet's default (tests/integration/fleet_vars: simulated-cp311, the host's Python).
SIMULATED_PIN_SETS = {"3.6": "simulated-cp36"}


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
                pin_set = SIMULATED_PIN_SETS.get(host["python"]["version"])
                if host["python"]["build"] and pin_set:   # what that Python can install
                    variables.append(("jetson_env_pin_set", pin_set))
            lines.append("        {}:".format(host["name"]))
            lines += ["          {}: {}".format(key, _scalar(value)) for key, value in variables]
    return "\n".join(lines) + "\n"
