"""Preflight (controller only): the version gate (controller/versions.py), the catalog, its
paths and graphs, every host's selection; then the store's run lock. See
controller/preflight.py."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.utils.display import Display

try:
    from controller import preflight, runlock, versions
    from controller.action import ControllerAction, fact_injection_problem
except ImportError as error:  # the first plugin of a run: say how to fix the controller
    raise AnsibleError(
        "the controller package is not importable ({}): run `make venv` (or `python3 "
        "tools/controller_path.py`) to put this repository on the path of the Python that "
        "runs ansible-playbook".format(error)) from error


class ActionModule(ControllerAction):
    FROM_RUN = {"hosts": "ansible_play_hosts_all"}

    def decide(self, args, task_vars):
        # Before anything else, the version gate: ansible-core and Jinja2 within the bounds of
        # requirements/controller.txt (controller/versions.py).
        outdated = versions.version_problems(versions.installed_versions())
        if outdated:
            return {"failed": True, "msg": "Preflight: " + " ".join(outdated)}
        # Then a run in which a device's facts become variables is refused
        # (controller/action.py; docs/threat-model.md).
        injection = fact_injection_problem()
        if injection:
            return {"failed": True, "msg": "Preflight: " + injection}
        # engine_catalog, engine_store_dir, engine_store_wait_s: the run's values, else the
        # defaults of controller/schema.py.
        catalog_path = self.setting(task_vars, "engine_catalog")
        store_dir = Path(self.setting(task_vars, "engine_store_dir"))
        # The lock's renewer starts now, so that its Python starts while the inputs are
        # checked; the lock is taken only once they pass (else the renewer is cancelled).
        with contextlib.nullcontext() if self.check_mode else runlock.Renewer(
                store_dir) as renewer:
            checked = preflight.run_preflight(
                catalog_path, list(args["hosts"]), task_vars["hostvars"],
                task_vars.get("ansible_inventory_sources") or [], task_vars.get("playbook_dir"),
                check_mode=self.check_mode)
            problems = checked["problems"]
            if problems:
                return {"failed": True, "problems": problems,
                        "msg": "Preflight found {} problem(s), nothing was changed:\n{}".format(
                            len(problems), "\n".join(problems))}
            notes = list(checked["notes"])
            if renewer is not None:
                # The workers' parent is the run's ansible-playbook process: it holds the lock
                # (renewed by a process of its own while the run lasts: controller/runlock.py).
                wait_s = int(self.setting(task_vars, "engine_store_wait_s"))
                notes += runlock.hold_store(store_dir, os.getppid(), " ".join(sys.argv),
                                            wait_s, say=Display().display, renewer=renewer)
        message = "Preflight OK: {} host(s), models {}".format(
            len(args["hosts"]), ", ".join(checked["catalog"]) or "(none)")
        self.say([message] + notes)
        return {"notes": notes, "msg": message,
                # Every host reads them from the task's register (controller/action.py).
                "catalog": checked["catalog"],
                "store_dir": str(store_dir),
                "catalog_file": os.path.realpath(catalog_path),
                "selections": checked["selections"]}
