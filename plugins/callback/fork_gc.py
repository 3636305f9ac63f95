"""Freeze the controller's Python objects before Ansible forks the play's workers."""

import gc

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: fork_gc
type: aggregate
short_description: Freeze the main process's objects before the workers are forked
description:
  - At the start of each play, moves every object the main process holds (the parsed
    playbook, the inventory, the loaded plugins) out of reach of the garbage collector
    (Python's C(gc.freeze)), the way the Python documentation advises for a process that forks
    without exec, as Ansible forks one worker per host and task.
  - A worker's collections then leave the inherited objects alone instead of writing to each
    of them (a copy-on-write page fault per page), and the main process's own collections,
    its last one at exit included, skip them (bench/README.md gives what that saves).
  - Objects frozen are never collected; a play's garbage cycles made before the next play
    starts stay in memory until the run ends.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary, fork_gc)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fork_gc"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play):
        # Sent before the strategy forks any worker of the play (PlaybookExecutor.run).
        gc.freeze()
