"""The version gate (controller/versions.py): the preflight, the first controller step of both
playbooks, refuses an ansible-core outside 2.16.x and a Jinja2 older than 3.1.6, the bounds of
requirements/controller.txt. Checked on faked versions, then in a real ansible-playbook run
whose process reports other versions than the venv's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller import versions

REPO = Path(__file__).resolve().parents[2]
GOOD = {"ansible-core": "2.16.19", "jinja2": "3.1.6"}


@pytest.mark.parametrize(("installed", "refused"), [
    (GOOD, None),
    ({"ansible-core": "2.16.0", "jinja2": "3.2.0"}, None),
    ({"ansible-core": "2.17.0", "jinja2": "3.1.6"}, "ansible-core 2.17.0"),
    ({"ansible-core": "2.15.13", "jinja2": "3.1.6"}, "ansible-core 2.15.13"),
    ({"ansible-core": "2.16.19", "jinja2": "3.1.5"}, "Jinja2 3.1.5"),
    ({"ansible-core": "2.16.19"}, "Jinja2 (none)"),
])
def test_versions_outside_the_requirements_are_refused(installed, refused):
    problems = versions.version_problems(installed)
    if refused is None:
        assert problems == []
        return
    (problem,) = problems
    assert problem.startswith("refused: {} is installed; the playbooks need ".format(refused))
    # The advice installs the pins into the Python that runs ansible-playbook.
    assert "{} -m pip install -r {} -c {}. Nothing was changed.".format(
        sys.executable, REPO / "requirements/controller.txt",
        REPO / "requirements/constraints.txt") in problem


def test_the_bounds_are_those_of_the_requirements_file(tmp_path):
    requirements = tmp_path / "controller.txt"
    requirements.write_text("# other bounds\nansible-core>=2.17,<2.18  # a comment\n"
                            "jinja2>=3.2\npyyaml\n")
    assert versions.version_problems({"ansible-core": "2.17.3", "jinja2": "3.2.0"},
                                     requirements) == []
    assert len(versions.version_problems(GOOD, requirements)) == 2
    assert set(versions.gated_requirements()) == {"ansible-core", "jinja2"}


def test_this_controller_passes_the_gate():
    assert versions.version_problems(versions.installed_versions()) == []


# The real ansible-playbook, in a process whose ansible-core and Jinja2 report other versions
# (the attributes the gate reads; the workers fork from it), on the preflight of both playbooks.
FAKED_RUN = ("import sys, jinja2\nfrom ansible import release\n"
             "release.__version__, jinja2.__version__ = sys.argv[1:3]\n"
             "sys.argv = ['ansible-playbook'] + sys.argv[3:]\n"
             "from ansible.cli.playbook import main\nmain()\n")


def run_preflight(tmp_path, ansible_version, jinja2_version):
    playbook = tmp_path / "gate.yml"
    playbook.write_text(
        "- name: The preflight alone\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Preflight\n      ansible.builtin.import_tasks: {}\n".format(
            REPO / "playbooks/tasks/preflight.yml"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="", ANSIBLE_DEPRECATION_WARNINGS="False")
    # --check: the preflight takes no run lock in the repository's store.
    return subprocess.run(
        [sys.executable, "-c", FAKED_RUN, ansible_version, jinja2_version, str(playbook),
         "-i", "gate-host,", "-e", "ansible_connection=local", "--check"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_ansible_playbook_stops_at_the_gate(tmp_path):
    result = run_preflight(tmp_path, "2.17.1", "3.1.5")
    assert result.returncode != 0
    out = result.stdout
    assert "Preflight: refused: ansible-core 2.17.1 is installed" in out, out
    assert "refused: Jinja2 3.1.5 is installed" in out
    assert "Preflight found" not in out and "Preflight OK" not in out  # nothing else ran


def test_ansible_playbook_with_the_pinned_versions_passes_the_gate(tmp_path):
    result = run_preflight(tmp_path, "2.16.19", "3.1.6")
    out = result.stdout
    assert "refused: ansible-core" not in out and "refused: Jinja2" not in out, out
    # Past the gate: the preflight's own checks ran (gate-host selects no model).
    assert "Preflight OK: 1 host(s)" in out or "Preflight found" in out, out
