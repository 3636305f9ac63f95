"""Ready the controller's main process for the workers Ansible forks from it."""

import gc
from pathlib import Path

from ansible.plugins.loader import action_loader

from controller.callback import ProjectCallback

DOCUMENTATION = r"""
name: fork_gc
type: aggregate
short_description: Ready the main process for the workers it forks (imports, garbage collector)
description:
  - Ansible forks one worker process per host and task from its main process, and a worker
    ends with its task. Whatever a worker imports is imported anew by the next one.
  - At the start of each task whose action is one of this project's action plugins
    (C(plugins/action)), loads that plugin in the main process, so the task's workers inherit
    it and the controller package it imports instead of each importing them (the run's first
    step alone imports C(controller.action) and what it needs, about 20 ms of CPU per worker).
  - At the start of each play, moves every object the main process holds (the parsed
    playbook, the inventory, the loaded plugins) out of reach of the garbage collector
    (Python's C(gc.freeze)), the way the Python documentation advises for a process that forks
    without exec. A worker's collections then leave the inherited objects alone instead of
    writing to each of them (a copy-on-write page fault per page), and the main process's own
    collections, its last one at exit included, skip them (bench/README.md gives what that
    saves).
  - Objects frozen are never collected; a play's garbage cycles made before the next play
    starts stay in memory until the run ends.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary, fork_gc, closed_stdout)
"""

# The project's action plugins, by the names tasks call them.
PROJECT_ACTIONS = frozenset(
    path.stem for path in (Path(__file__).resolve().parents[1] / "action").glob("*.py"))


class CallbackModule(ProjectCallback):
    CALLBACK_NAME = "fork_gc"

    def v2_playbook_on_play_start(self, play):
        # Sent before the strategy forks any worker of the play (PlaybookExecutor.run).
        gc.freeze()

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Sent by the strategy before it queues the task's first host (the first fork). The
        # plugin loader keeps the module it loaded, which every later fork inherits.
        if task.action in PROJECT_ACTIONS:
            action_loader.get(task.action, class_only=True)
