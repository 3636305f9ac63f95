"""Ready the controller's main process for the workers Ansible forks from it."""

import atexit
import gc
from pathlib import Path

from ansible.plugins.loader import action_loader
from ansible.utils.display import Display

from controller import module_payloads
from controller.callback import ProjectCallback

DOCUMENTATION = r"""
name: fork_gc
type: aggregate
short_description: Ready the main process for the workers it forks (imports, payloads, gc)
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
  - At the start of each play, forks a child of the main process that builds the AnsiballZ
    payloads of this project's device modules (C(library)) the play runs, into the run's
    module cache, while the preflight runs (C(controller/module_payloads.py)). The facts
    step's worker then finds its payload built instead of spending about 0.1 s building it
    between the preflight and the devices' one remote call. The child ends on its own; the
    main process reaps it and waits for it before it exits.
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

    def __init__(self):
        super().__init__()
        self.built: set[str] = set()  # the modules handed to a child, once per run
        self.child: int | None = None

    def v2_playbook_on_play_start(self, play):
        # Sent before the strategy forks any worker of the play (PlaybookExecutor.run), and
        # before it starts its results thread: the main process runs one thread, so a fork
        # here is as safe as the strategy's own.
        gc.freeze()
        names = [name for name in module_payloads.device_modules(play) if name not in self.built]
        if names and self.child is None:
            self.built.update(names)
            try:
                self.child = module_payloads.build_ahead(names)
            except OSError as error:  # no process to spare: each step packs its own
                Display().vvv("fork_gc: the device modules' payloads are not built ahead "
                              "({})".format(error))
                return
            atexit.register(self._reap, wait=True)  # before Ansible removes the cache

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Sent by the strategy before it queues the task's first host (the first fork). The
        # plugin loader keeps the module it loaded, which every later fork inherits.
        if task.action in PROJECT_ACTIONS:
            action_loader.get(task.action, class_only=True)
        self._reap(wait=False)

    def _reap(self, *, wait: bool) -> None:
        if self.child is None:
            return
        status = module_payloads.reap(self.child, wait=wait)
        if status is None:
            return
        self.child = None
        if status != 0:  # the step that sends the module builds it and says what failed
            Display().vvv("fork_gc: building the device modules' payloads ahead failed "
                          "(exit {}); each step builds its own".format(status))
