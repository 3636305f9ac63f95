"""The version gate: the controller's ansible-core and Jinja2 against what the project runs on.

The bounds have one home, requirements/controller.txt (what `make venv` installs); the
preflight, the first controller step of both playbooks, refuses a run outside them before any
device is touched: ansible-core 2.17 and later cannot manage the Python 3.6 of JetPack 4
(`SyntaxError: future feature annotations is not defined` on the device), and a Jinja2 older
than the pin lacks its sandbox fixes. Checked in Python, in a step every run takes anyway, so
the gate costs no task (bench/README.md: a task costs a worker process per host).
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements" / "controller.txt"
CONSTRAINTS = REPO_ROOT / "requirements" / "constraints.txt"
# The gated distributions and why their bounds matter.
GATED = {"ansible-core": "2.17 and later cannot manage the Python 3.6 of JetPack 4",
         "Jinja2": "3.1.6 fixes a sandbox escape, CVE-2025-27516"}


def gated_requirements(path: Path = REQUIREMENTS) -> dict[str, Requirement]:
    """{canonical name: requirement} of the GATED distributions in ``path``."""
    found: dict[str, Requirement] = {}
    wanted = {canonicalize_name(name) for name in GATED}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) in wanted:
                found[canonicalize_name(requirement.name)] = requirement
    return found


def installed_versions() -> dict[str, str]:
    """The versions this controller process runs."""
    import jinja2  # noqa: PLC0415 (read when asked, as Ansible has loaded them)
    from ansible import release  # noqa: PLC0415

    return {"ansible-core": release.__version__, "jinja2": jinja2.__version__}


def version_problems(installed: dict[str, str], path: Path = REQUIREMENTS) -> list[str]:
    """One message per gated distribution whose installed version is outside ``path``'s
    bounds, with the command that installs the pinned ones (for the Python running now)."""
    problems = []
    for name, requirement in sorted(gated_requirements(path).items()):
        version = installed.get(name)
        if version is not None and requirement.specifier.contains(version, prereleases=True):
            continue
        why = next(text for gated, text in GATED.items() if canonicalize_name(gated) == name)
        problems.append(
            "refused: {} {} is installed; the playbooks need {} ({}: {}). Install the pinned "
            "versions into the Python that runs ansible-playbook: {} -m pip install -r {} "
            "-c {}. Nothing was changed.".format(
                requirement.name, version or "(none)", requirement, path.name, why,
                sys.executable, REQUIREMENTS, CONSTRAINTS))
    return problems
