"""Action plugin (controller only): file one host's staged engines into the engine store.

The filing itself is library/engine_store.py's (checksum-verified against the manifest,
atomic entry rename under the store's lock, index.json rewritten when it changes); this
runs it inside the controller's Ansible process for every model of the host, then clears
the host's staging area, instead of one local module execution (an interpreter start each)
per model plus one to clear the staging area.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from ansible.plugins.action import ActionBase

LIBRARY = Path(__file__).resolve().parents[3] / "library" / "engine_store.py"

DOCUMENTATION = r"""
---
action: engine_store_collect
short_description: File a host's staged engines into the engine store, then clear its staging
description:
  - Controller-side step of the engine_collect role (roles/engine_collect/meta/argument_specs.yml).
  - For each model, what the engine_store module does (library/engine_store.py).
options:
  store_dir:
    description: The engine store.
    type: path
    required: true
  platform_id:
    description: The host's platform_id (the store refuses an engine built for another).
    type: str
    required: true
  staging_dir:
    description: The host's staging area, one sub-directory per model; removed once all filed.
    type: path
    required: true
  models:
    description: The models to file.
    type: list
    elements: str
    required: true
"""


def _store_library():
    spec = importlib.util.spec_from_file_location("engine_store_library", LIBRARY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _InProcess:
    """What library/engine_store.py's file_engine needs of an AnsibleModule."""

    def __init__(self, check_mode):
        self.check_mode = check_mode

    @staticmethod
    def atomic_move(src, dest):
        os.replace(src, dest)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("store_dir", "platform_id", "staging_dir", "models"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        store = _store_library()
        context = _InProcess(self._task.check_mode)
        paths, problems, changed = {}, [], False
        for model in args["models"]:
            params = {"store_dir": args["store_dir"], "platform_id": args["platform_id"],
                      "model": model, "staged_dir": os.path.join(args["staging_dir"], model)}
            try:
                filed = store.file_engine(context, params)
            except (store.StoreError, OSError) as error:
                problems.append("{}: {}".format(model, error))
                continue
            paths[model] = filed["path"]
            changed = changed or filed["changed"]
        result.update(changed=changed, paths=paths)
        if problems:
            # The staging area stays for a look at what was refused.
            result.update(failed=True, msg="engine_store: " + "; ".join(problems))
            return result
        if not self._task.check_mode:
            shutil.rmtree(args["staging_dir"], ignore_errors=True)
        return result
