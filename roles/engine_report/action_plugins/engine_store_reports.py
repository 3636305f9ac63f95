"""Action plugin (controller only): write the store's reports from its index.json.

Renders each report (report.md, report.html: the engine_store_document filter) in the
controller's Ansible process and writes a file only when its content differs, atomically.
Both reports derive from index.json alone (no clock inside), so a run that changed nothing
in the store rewrites neither, and it costs no module execution and no interpreter start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

REPO_ROOT = Path(__file__).resolve().parents[3]
for path in (REPO_ROOT, REPO_ROOT / "plugins" / "filter"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from engine_report_html import engine_store_document  # noqa: E402

from builder.atomic import write_text  # noqa: E402  (needs REPO_ROOT on sys.path)

DOCUMENTATION = r"""
---
action: engine_store_reports
short_description: Write the engine store's reports from its index.json when they differ
description:
  - Controller-side step of the engine_report role; see roles/engine_report/meta/argument_specs.yml.
options:
  store_dir:
    description: The engine store (holds index.json); the reports are written next to it.
    type: path
    required: true
  documents:
    description: Report file names (each one the engine_store_document filter knows).
    type: list
    elements: str
    required: true
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("store_dir", "documents"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        store = Path(self._task.args["store_dir"])
        index_path = store / "index.json"
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            result.update(changed=False, written=[],
                          msg="no index.json in {}: no report to write".format(store))
            return result
        except (OSError, ValueError) as error:
            raise AnsibleActionFail("cannot read the store's index {}: {}. Re-run the playbook: "
                                    "the store rewrites it when it files an engine".format(
                                        index_path, error)) from error
        written = []
        for name in self._task.args["documents"]:
            target = store / name
            text = engine_store_document(index, name)
            try:
                unchanged = target.read_text(encoding="utf-8") == text
            except FileNotFoundError:
                unchanged = False
            if unchanged:
                continue
            if not self._task.check_mode:
                write_text(str(target), text)
            written.append(str(target))
        result.update(changed=bool(written), written=written)
        return result
