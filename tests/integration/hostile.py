"""A compromised device for the tests: every variable name the controller reads, a hostile value
for each, and the interpreter wrapper that adds them as ``ansible_facts`` to every module's
answer (tests/integration/test_hostile_facts_local.py, test_hostile_device.py).

The names are derived, not listed by hand: controller/schema.py (the user variables), the
roles' defaults, vars and argument_specs, the registered and set_fact names of the playbooks
and roles, the variables the actions read (FROM_RUN, FROM_HOST), and every ``engine_*`` /
``jetson_*`` name the playbooks, roles, actions and controller package mention.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import yaml

from controller import schema

REPO = Path(__file__).resolve().parents[2]
# The device's own answer to the facts step (registered as jetson_device): what a device says
# about itself is checked field by field (controller/device.py, tests/unit/test_device_answer.py),
# a different test from the variables it must not set.
ANSWER = ("jetson", "jetson_state", "jetson_deployed")
NAME = re.compile(r"\b(?:engine|jetson)_[a-z0-9_]+\b")


def _yaml_keys(path: Path) -> set[str]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return set(data) if isinstance(data, dict) else set()


def _argument_spec_options(path: Path) -> set[str]:
    data = yaml.safe_load(path.read_text()) or {}
    names = set()
    for entry in (data.get("argument_specs") or {}).values():
        names |= set((entry or {}).get("options") or {})
    return names


def _tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "handlers", "pre_tasks", "post_tasks"):
            yield from _tasks(node.get(key))


def _registered_and_set(path: Path) -> set[str]:
    names = set()
    for task in _tasks(yaml.safe_load(path.read_text())):
        if isinstance(task.get("register"), str):
            names.add(task["register"])
        for action in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(action), dict):
                names |= {k for k in task[action] if k != "cacheable"}
        if isinstance(task.get("vars"), dict):
            names |= set(task["vars"])
    return names


def _class_mappings(path: Path, attribute: str) -> set[str]:
    """Values of a class attribute dict (FROM_RUN, FROM_HOST) of an action plugin (a value
    may be a tuple of names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == attribute for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue  # names from a controller module: read there (below)
            for names_of in (value.values() if isinstance(value, dict) else ()):
                names |= set(names_of) if isinstance(names_of, tuple) else {names_of}
    return names


def controller_variables() -> dict[str, str]:
    """{name: where it was found} of every variable the controller reads for a host."""
    found: dict[str, str] = {}

    def add(names, where):
        for name in sorted(names):
            found.setdefault(name, where)

    add((v.name for v in schema.USER_VARIABLES), "controller/schema.py")
    for role in sorted((REPO / "roles").iterdir()):
        for part in ("defaults/main.yml", "vars/main.yml"):
            add(_yaml_keys(role / part), "roles/{}/{}".format(role.name, part))
        add(_argument_spec_options(role / "meta" / "argument_specs.yml"),
            "roles/{}/meta/argument_specs.yml".format(role.name))
    yaml_files = sorted((REPO / "playbooks").rglob("*.yml")) + sorted(
        (REPO / "roles").glob("*/tasks/*.yml")) + sorted((REPO / "roles").glob("*/handlers/*.yml"))
    for path in yaml_files:
        add(_registered_and_set(path), str(path.relative_to(REPO)))
    for path in sorted((REPO / "plugins" / "action").glob("*.py")):
        add(_class_mappings(path, "FROM_RUN") | _class_mappings(path, "FROM_HOST"),
            str(path.relative_to(REPO)))
    mentioned = yaml_files + sorted((REPO / "plugins").rglob("*.py")) + sorted(
        (REPO / "controller").glob("*.py"))
    for path in mentioned:
        add(set(NAME.findall(path.read_text())), str(path.relative_to(REPO)))
    for name in ANSWER:
        found.pop(name, None)
    return found


def hostile_value(name: str, prefix: str):
    """What a compromised device answers for ``name``: for a user variable a value of its
    type that would change what the controller does (a store elsewhere, a fetch limit of 0
    that refuses every engine, another model list); for any other name a path under
    ``prefix`` (valid on the controller and on a device), so that any use of it shows."""
    variable = schema.BY_NAME.get(name)
    if variable is None or variable.type == "path":
        return "{}/{}".format(prefix, name)
    if variable.type == "int":
        return 0
    if variable.type == "list":
        return ["hostile_model"]
    if variable.type == "bool":
        return True
    return "hostile"


def hostile_facts(prefix: str) -> dict:
    return {name: hostile_value(name, prefix) for name in controller_variables()}


# The compromised device's interpreter: the real Python runs the module (stdin inherited, so
# pipelined and file-based modules both work); the answer gets the hostile facts added.
LIE_PY = r'''
import json
import subprocess
import sys

REAL = {real!r}
with open({facts!r}) as handle:
    HOSTILE = json.load(handle)
done = subprocess.run([REAL] + sys.argv[1:], stdout=subprocess.PIPE)
text = done.stdout.decode("utf-8", "replace")
start, end = text.find("{{"), text.rfind("}}")
try:
    answer = json.loads(text[start:end + 1])
except ValueError:
    answer = None
if isinstance(answer, dict):
    facts = answer.get("ansible_facts") if isinstance(answer.get("ansible_facts"), dict) else {{}}
    facts.update(HOSTILE)
    answer["ansible_facts"] = facts
    text = text[:start] + json.dumps(answer) + text[end + 1:]
sys.stdout.write(text)
sys.stdout.flush()
sys.exit(done.returncode)
'''


def install_liar(directory: Path, real_python: str, facts: dict, facts_path: str,
                 lie_path: str) -> Path:
    """Write the wrapper into ``directory`` (as seen from here); ``facts_path`` and
    ``lie_path``: where the facts file and lie.py are as the wrapper's host sees them.
    Returns the wrapper (``python3``), which an inventory names as ansible_python_interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "facts.json").write_text(json.dumps(facts))
    (directory / "lie.py").write_text(LIE_PY.format(real=real_python, facts=facts_path))
    wrapper = directory / "python3"
    wrapper.write_text("#!/bin/sh\nexec {} {} \"$@\"\n".format(real_python, lie_path))
    wrapper.chmod(0o755)
    return wrapper
