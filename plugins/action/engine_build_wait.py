"""Wait for a device's builder processes on a wall clock (controller/build_wait.py).

Runs on the controller. Each round one shell command waits on the device until one of the
running jobs ended or a window (poll_s) passed (a long poll, controller/build_wait.py
long_poll_command); only the jobs it names are asked with async_status, one module call each.
A call that fails (the device or its sshd does not answer) is retried until the job's
deadline. Finished jobs are cleaned up on the device (async_status mode=cleanup).
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from controller.build_wait import ended_jids, jobs_from, long_poll_command, wait_for

DISPLAY = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jobs", "poll_s"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname")
        jobs, not_started = jobs_from(list(self._task.args.get("jobs") or []), time.monotonic())
        # Where the async jobs write (the shell's async_dir); the module expands "~" itself
        # (a path argument), the long poll's shell command through $HOME.
        async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")

        def no_answer(what, error):
            DISPLAY.vvvv("{}: no answer to {} ({}); retried until the deadline".format(
                host, what, error))
            self._connection.reset()

        def status(jid, mode="status"):
            try:
                return self._execute_module(
                    module_name="ansible.legacy.async_status", task_vars=task_vars,
                    module_args={"jid": jid, "mode": mode, "_async_dir": async_dir})
            except AnsibleConnectionFailure as error:
                no_answer("async_status", error)
                return None

        def wait(jids, window_s):
            try:
                answer = self._low_level_execute_command(
                    long_poll_command(async_dir, jids, window_s))
            except AnsibleConnectionFailure as error:
                no_answer("the long poll", error)
                return None
            if answer.get("rc") != 0:
                DISPLAY.vvvv("{}: the long poll failed (rc {}): {}".format(
                    host, answer.get("rc"), answer.get("stderr")))
                return None
            return ended_jids(answer.get("stdout") or "", jids)

        finished = wait_for(jobs, status, wait, host=str(host),
                            poll_s=float(self._task.args.get("poll_s") or 30),
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
