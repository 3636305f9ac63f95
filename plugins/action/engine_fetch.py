"""Bring a round's checked files from a device into the store's staging area: each over the
connection's own transfer (sftp), no remote command (ansible.builtin.fetch runs a stat module
per file first). What may be fetched, and where to, is the round's read-back
(controller/round_result.py): plain files of bounded size, each in its model's own work
directory; the filing step checks every byte after (controller/store.py)."""

from __future__ import annotations

import os
import posixpath

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        files = [item for item in self._task.args.get("files") or [] if item]
        fetched = []
        for item in files:
            dest = item["dest"]
            if dest.endswith("/"):
                dest += posixpath.basename(item["src"])
            os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
            try:
                self._connection.fetch_file(item["src"], dest)
            except AnsibleConnectionFailure:
                raise  # the device is gone: Ansible makes it unreachable
            except AnsibleError as error:
                result.update(failed=True, fetched=fetched, msg="fetching {} failed: {}".format(
                    item["src"], error))
                return result
            fetched.append(dest)
        result.update(changed=bool(fetched), fetched=fetched)
        return result
