"""Everything that runs on a device is Python 3.6 (JetPack 4): `make lint` runs vermin over the
builder and the modules; this covers what it cannot see, the Python the roles' tasks pass to a
device's interpreter with ``-c``, and checks that the lint names every directory of device
code."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VERMIN = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
# What the devices run: the builder (its wheel, and module_utils/jetson_builder -> ../builder),
# the modules and their module_utils.
DEVICE_DIRS = ("builder/", "library/", "module_utils/")
# The guard's launcher, a Python file once its interpreter line is rendered.
GUARD_LAUNCHER = REPO / "roles/engine_deploy/templates/trt-engine-path.j2"


def task_snippets():
    """(task file, task name, code) of every ``<python> -c CODE`` in the roles' tasks."""
    found = []
    for path in sorted(REPO.glob("roles/*/tasks/*.yml")):
        pending = list(yaml.safe_load(path.read_text()) or [])
        while pending:
            task = pending.pop()
            if not isinstance(task, dict):
                continue
            for key in ("block", "rescue", "always"):
                pending += task.get(key) or []
            command = task.get("ansible.builtin.command") or {}
            argv = command.get("argv") if isinstance(command, dict) else None
            for index, arg in enumerate(argv or []):
                if arg == "-c" and index + 1 < len(argv):
                    found.append((path.relative_to(REPO), task.get("name"), argv[index + 1]))
    return found


def test_the_roles_run_python_on_the_devices():
    """The scan finds the snippets it must check (it would pass vacuously otherwise)."""
    places = {str(path) for path, _, _ in task_snippets()}
    # (roles/engine_deploy's import check runs in library/engine_deploy.py, which vermin checks.)
    assert {"roles/jetson_env/tasks/jetpack_libs.yml", "roles/jetson_env/tasks/venv.yml"} <= places


@pytest.mark.parametrize(("path", "name", "code"), task_snippets(),
                         ids=lambda value: str(value)[:40])
def test_task_snippets_are_python_3_6(path, name, code, tmp_path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(code)
    result = subprocess.run([VERMIN, "--target=3.6-", "--no-tips", "--violations",
                             "--eval-annotations", str(snippet)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, "{} ({}): {}{}".format(path, name, result.stdout,
                                                          result.stderr)


def test_vermin_fails_on_newer_python(tmp_path):
    """The check above can fail: a walrus (3.8) is refused for 3.6."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text("if (n := 1):\n    print(n)\n")
    result = subprocess.run([VERMIN, "--target=3.6-", "--no-tips", "--violations", str(snippet)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_make_lint_runs_vermin_over_every_directory_of_device_code():
    makefile = (REPO / "Makefile").read_text()
    command = re.search(r"vermin --target=3\.6-(?:[^\n\\]|\\\n)*", makefile).group(0)
    assert all(directory in command.split() for directory in DEVICE_DIRS), command
    # Every module Ansible ships to a device is in one of them (ansible.cfg: library,
    # module_utils); the one template a role ships is the guard's launcher (checked below).
    assert not list(REPO.glob("roles/*/files"))
    assert sorted(REPO.glob("roles/*/templates/*")) == [GUARD_LAUNCHER]
    config = (REPO / "ansible.cfg").read_text()
    assert re.search(r"^library = library$", config, re.M)
    assert re.search(r"^module_utils = module_utils$", config, re.M)


def test_the_guard_launcher_is_python_3_6(tmp_path):
    launcher = tmp_path / "trt-engine-path.py"
    launcher.write_text(GUARD_LAUNCHER.read_text().split("\n", 1)[1])  # without the #! line
    result = subprocess.run([VERMIN, "--target=3.6-", "--no-tips", "--violations",
                             str(launcher)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
