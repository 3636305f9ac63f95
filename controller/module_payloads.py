"""The payloads of this project's device modules (library/), built while the preflight runs.

Before Ansible sends a Python module to a device it packs the module and every module_utils
file it imports into one zip (AnsiballZ): each of those files is parsed to find its imports.
The first worker of a run that sends a module builds that zip, about 0.1 s of CPU for
jetson_facts, and leaves it in the run's cache (``ansiballz_cache`` in Ansible's local temporary
directory) for the others. That worker is the facts step's, so a run with nothing to do waited
for the build between its preflight and its one remote call per device.

``build_ahead`` forks the controller's main process when a play starts, before the strategy's
first worker, and the child builds the payloads of the project's modules the play runs, with
Ansible's own ``modify_module``, under Ansible's own per-module lock (created ahead, as the
strategy would when queueing the task). The step that sends the module then finds the zip
built, or waits on that lock while the child finishes it, as Ansible's own workers wait on each
other. Nothing of a task's arguments, host or interpreter is in the cached zip: those go into
the wrapper Ansible writes around it for each call. The child never writes outside that cache;
when it fails, the step builds the zip itself and reports what fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from .repository import REPOSITORY

# The modules that run on the devices, by the names tasks call them.
DEVICE_MODULES = frozenset(path.stem for path in (REPOSITORY / "library").glob("*.py"))


def _tasks(items: Iterable[Any]) -> Iterator[Any]:
    """Every task of a list of blocks and tasks (import_tasks and import_role expanded)."""
    for item in items:
        if hasattr(item, "block"):  # a Block: its tasks, its rescue and always sections
            yield from _tasks(item.block)
            yield from _tasks(item.rescue)
            yield from _tasks(item.always)
        else:
            yield item


def device_modules(play: Any) -> list[str]:
    """The project's device modules the play's tasks run, in the order they first run."""
    found: list[str] = []
    for task in _tasks(play.pre_tasks + play.tasks + play.post_tasks):
        if task.action in DEVICE_MODULES and task.action not in found:
            found.append(task.action)
    return found


def _build(names: list[str]) -> None:
    """In the child: each module's zip, into the run's cache (what Ansible's action does
    first, minus the wrapper)."""
    from ansible import constants  # noqa: PLC0415 (the child's imports, not the callback's)
    from ansible.executor.module_common import modify_module  # noqa: PLC0415
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.plugins.loader import module_loader  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415

    templar = Templar(loader=DataLoader())
    compression = constants.config.get_config_value("DEFAULT_MODULE_COMPRESSION")
    for name in names:
        # The interpreter only picks the wrapper's first line, which the cache does not keep;
        # naming one spares the build an interpreter discovery.
        modify_module(name, module_loader.find_plugin(name), {}, templar,
                      task_vars={"ansible_python_interpreter": "python3"},
                      module_compression=compression)


def build_ahead(names: list[str]) -> int | None:
    """Fork a child that builds the payloads of ``names``; its pid (None with nothing to
    build). Call it from the main process while it runs no other thread (a play's start)."""
    if not names:
        return None
    from multiprocessing import Lock  # noqa: PLC0415

    from ansible.executor.action_write_locks import action_write_locks  # noqa: PLC0415

    for name in names:
        if name not in action_write_locks:  # the lock the step's worker will take
            action_write_locks[name] = Lock()
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        _build(names)
        status = 0
    finally:
        # No atexit handlers (the main process's own, which remove the cache's directory), no
        # flush of inherited output buffers: the child leaves nothing but the cache.
        os._exit(status)


def reap(pid: int, *, wait: bool) -> int | None:
    """The child's exit status once it has ended (waiting for it when ``wait``), else None."""
    done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None
