"""Wait for a device's builder processes on a wall clock (controller/build_wait.py).

Runs on the controller and polls the device with async_status, one module call per job and
poll; a call that fails (the device or its sshd does not answer) is retried until the job's
deadline. Finished jobs are cleaned up on the device (async_status mode=cleanup).
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from controller.build_wait import jobs_from, wait_for

DISPLAY = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jobs", "poll_s"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        jobs, not_started = jobs_from(list(self._task.args.get("jobs") or []), time.monotonic())
        # Where the async jobs write (the shell's async_dir); the module expands "~" itself
        # (a path argument), so no remote call is needed for it.
        async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")

        def status(jid, mode="status"):
            try:
                return self._execute_module(
                    module_name="ansible.legacy.async_status", task_vars=task_vars,
                    module_args={"jid": jid, "mode": mode, "_async_dir": async_dir})
            except AnsibleConnectionFailure as error:
                DISPLAY.vvvv("{}: no answer to async_status ({}); retried until the "
                             "deadline".format(task_vars.get("inventory_hostname"), error))
                self._connection.reset()
                return None

        finished = wait_for(jobs, status, host=str(task_vars.get("inventory_hostname")),
                            poll_s=float(self._task.args.get("poll_s") or 5),
                            say=DISPLAY.display)
        for job in finished:
            if job.get("finished"):
                status(job["ansible_job_id"], mode="cleanup")
        result["results"] = not_started + finished
        result["changed"] = any(job.get("rc") == 0 for job in finished)
        # A process given up at its deadline: the device is not asked anything more this run
        # (the same judgement as the read-back's, controller/round_result.py).
        result["silent"] = any(job.get("timedout") for job in finished)
        return result
