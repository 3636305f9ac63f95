"""Finish one device's build round in one step, for its own device only
(controller/round_result.py finish_round): install the builder into the venv when the round
brought its wheel (the builds import it from the wheel meanwhile), wait for its builder
processes on the controller's clock, verify the engines that were already on it and list the
round's files (unless it went silent), read the round back (read_round), fetch what the
read-back allows into the store's staging area and file it into the store
(controller/collect.py file_round). A device whose builds ended early does not wait for the
round's other devices: its engines are in the store when its own round ends.

The wait (controller/build_wait.py): each time one shell command waits on the device until one
of the running jobs ended or a window (poll_s) passed (a long poll); only the jobs it names are
asked with async_status, one module call each. A call that fails (the device or its sshd does
not answer) is retried until the job's deadline; a call that hangs is cut at the round's
wait_s (build_wait.within), which gives every process of the round up. Finished jobs are
cleaned up on the device (async_status mode=cleanup).

The fetch: each file over the connection's own transfer (sftp), no remote command
(ansible.builtin.fetch runs a stat module per file first). What may be fetched, and where to,
is the read-back: plain files of bounded size, each in its model's own work directory; the
filing checks every byte after (controller/store.py: against the plan's platform, model,
variant and build key, sha256-verified, atomic, under the store's lock), asks nothing of the
device, and removes the host's staging area, also after a failed fetch: what arrived is
filed, then the device fails with the fetch's error.
"""

from __future__ import annotations

import os
import posixpath
import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.utils.display import Display

from controller.action import ControllerAction
from controller.build_wait import (
    ended_jids,
    jobs_from,
    long_poll_command,
    wait_for,
    wait_result,
    within,
)
from controller.collect import file_round
from controller.confirm_wait import FILED, wait_for_engines
from controller.device_push import carry_out, connection_lost_as, sender
from controller.device_work import round_work
from controller.round_result import (
    DeviceGone,
    RoundCalls,
    finish_round,
    previous_outcomes,
    read_round,
)
from controller.store import ROUND_ENDED, ROUND_STARTED, EngineStore

DISPLAY = Display()


class ActionModule(ControllerAction):
    _requires_connection = True
    # collect: whether the run's collect step fetches (engine_plan_result.steps.collect).
    ARGS = ("work", "started", "poll_s", "collect")
    FROM_RUN = {"plan": "engine_plan_result", "preflight": "preflight_result",
                "previous": "engine_round_result"}  # this action's result of the last round

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        work = args["work"]
        # The start task's registered result (a loop: one result per builder process).
        started = list((args["started"] or {}).get("results") or [])
        store_dir = args["plan"]["store_dir"]
        host_plan = args["plan"]["hosts"][host]
        max_bytes = int(self.setting(task_vars, "engine_fetch_max_mib")) * 2**20

        def reader(round_work, previous):
            def read(started, wait, verifies, listing):
                # Registered (engine_round_result), never facts: a device's later answer could
                # replace a fact of its host, not a registered result.
                return read_round(
                    round_work, host_plan, host=host, started=started, wait=wait,
                    verifies=verifies, listing=listing, previous=previous,
                    catalog=args["preflight"]["catalog"], max_bytes=max_bytes,
                    store=EngineStore(store_dir))  # the store as it is now: others file
            return read

        calls = RoundCalls(
            wait=lambda: self._wait(started, int(work["wait_s"]), float(args["poll_s"] or 30),
                                    str(host), task_vars),
            run=lambda argv: self._module("ansible.legacy.command", {"argv": argv}, task_vars),
            # One listing of every model's work directory and of the timing cache's (links
            # not followed): read_round checks it before a byte is fetched.
            find=lambda paths: self._module("ansible.legacy.find", {
                "paths": paths, "file_type": "any", "follow": False, "hidden": False},
                task_vars),
            fetch=self._fetch,
            file=lambda round_result: file_round(
                store_dir, host, host_plan, round_result,
                timing_cache=work["timing_cache"], catalog=args["preflight"]["catalog"],
                max_bytes=max_bytes, check_mode=self.check_mode,
                signing_key=self.setting(task_vars, "engine_signing_key")))
        # Devices waiting to confirm what this one builds know it reached its finish step
        # (controller/confirm_wait.py).
        EngineStore(store_dir).sign_round(host, ROUND_STARTED)
        try:
            result = finish_round(work, started, calls,
                                  reader(work, previous_outcomes(args["previous"])),
                                  fetching=bool(args["collect"]), earlier=args["previous"] or {})
        finally:
            # This round's builds are filed (or failed): a device waiting to confirm one of
            # them stops waiting (controller/confirm_wait.py).
            EngineStore(store_dir).sign_round(host, ROUND_ENDED)
        if not (work.get("awaits") and args["collect"]) or result.get("failed") \
                or result.get("unreachable") or result["silent"]:
            return result
        return self._confirm(result, work, args=args, calls=calls, reader=reader,
                             task_vars=task_vars)

    def _confirm(self, result, work, *, args, calls, reader, task_vars):
        """Confirm, in this round, the engines the devices this one readied itself for
        filed meanwhile (controller/confirm_wait.py): push each with its manifest, verify,
        list, read back, fetch and file, as round 1 would."""
        host = task_vars["inventory_hostname"]
        store_dir = args["plan"]["store_dir"]
        waits = wait_for_engines(
            work["awaits"], host, lookup=lambda key: EngineStore(store_dir).lookup(key),
            signed=lambda builder, what: EngineStore(store_dir).round_sign(
                builder, what).exists())
        result = dict(result, confirm_waits=waits)
        ready = sorted(model for model, how in waits.items() if how == FILED)
        if not ready:
            return result
        confirming = round_work(
            {"build": [], "collect": ready, "confirm": ready, "prepare": [], "remove": []},
            args["plan"]["hosts"][host], args["plan"]["devices"][host],
            args["preflight"]["catalog"], store=EngineStore(store_dir), wheel=None,
            builder={"marker": None, "current": True, "env_ensured": work["env_ensured"]})
        try:
            problem = carry_out(confirming["push"], confirming["push_commands"],
                                run=self._device_command,
                                put=sender(self._connection.put_file, lost=DeviceGone))
        except DeviceGone as error:
            return dict(result, unreachable=True, msg=str(error))
        if problem is not None:
            return dict(result, failed=True, msg=problem)
        confirmed = finish_round(confirming, [], calls,
                                 reader(confirming, result["outcomes"]), fetching=True,
                                 earlier=result)
        # The round's result, with the confirmations' outcomes, files and filings added.
        merged = dict(confirmed, changed=True, confirm_waits=waits,
                      **{key: result[key] for key in (
                          "builds_wait_s", "builder_current", "env_ensured", "timing_cache")},
                      **{key: result[key] + confirmed[key] for key in ("fetch", "fetched")})
        if not (confirmed.get("failed") or confirmed.get("unreachable")):
            merged["msg"] = result["msg"] + confirmed["msg"]
        warnings = (result.get("warnings") or []) + (confirmed.get("warnings") or [])
        if warnings:
            merged["warnings"] = warnings
        return merged

    # After the builds, a device that stops answering is gone (DeviceGone).
    def _device_command(self, command):
        with connection_lost_as(DeviceGone):
            return self._low_level_execute_command(command)

    def _module(self, name, module_args, task_vars):
        with connection_lost_as(DeviceGone):
            return self._execute_module(module_name=name, module_args=module_args,
                                        task_vars=task_vars)

    def _wait(self, started, wait_s, poll_s, host, task_vars):
        """The wait's result (build_wait.wait_result), cut after ``wait_s``."""
        jobs, not_started = jobs_from(started, time.monotonic())
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

        def wait_and_clean_up():
            finished = wait_for(jobs, status, wait, host=host, poll_s=poll_s,
                                say=DISPLAY.display)
            for job in finished:
                if job.get("finished"):
                    status(job["ansible_job_id"], mode="cleanup")
            return finished

        return wait_result(not_started, within(wait_s, wait_and_clean_up), wait_s)

    def _fetch(self, files):
        fetched = []
        for item in files:
            dest = item["dest"]
            if dest.endswith("/"):
                dest += posixpath.basename(item["src"])
            os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
            try:
                with connection_lost_as(DeviceGone):
                    self._connection.fetch_file(item["src"], dest)
            except AnsibleError as error:
                return fetched, "fetching {} failed: {}".format(item["src"], error)
            fetched.append(dest)
        return fetched, None
