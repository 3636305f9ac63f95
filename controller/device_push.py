"""A push of files to a device (plugins/action/engine_push.py): each file's item, and the two
device commands around the transfers. The build round (controller/device_work.py) and the
deploy (controller/deploy_plan.py) push this way.

Each file travels to a hidden ``part`` name in its directory and is renamed to its real
``path`` once every file is there, so a cut transfer never leaves a partial file under its
real name. Two remote commands for the whole push, whatever the number of files (a
``copy`` costs two to four per file); the first also removes what a build round drops (the
work directories of models a device no longer selects)."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError

# Graphs may be a team's own IP: a build round's files are the connecting user's alone.
PRIVATE = {"umask": "077", "mode": "600"}
# What the deploy installs is read by the engine's consumer, which may run as another user.
SHARED = {"umask": "022", "mode": "644"}


def pushed_file(src: str, directory: str, name: str, label: str) -> dict[str, str]:
    """One file of a push: sent to ``part``, renamed to ``path`` by push_commands' finish."""
    return {"src": src, "dest": directory + "/", "label": label,
            "part": "{}/.{}.part".format(directory, name), "path": "{}/{}".format(directory, name)}


def push_commands(push: list[dict[str, str]], access: dict[str, str] = PRIVATE,
                  remove: Sequence[str] = ()) -> dict[str, str]:
    """The device commands around the transfers. ``prepare`` first removes the paths of
    ``remove`` (rm -rf: a link there goes, never what it points at), then creates the
    directories (with ``access``'s umask) and removes what sits at the part names (an entry
    left by a cut push, or a link planted there, which the transfer would otherwise write
    through); ``finish`` gives each file ``access``'s mode and renames it over its real name
    (``mv -T``: a link or directory at that name is never followed). Empty commands: nothing
    to do."""
    prepare = ["rm -rf -- " + " ".join(shlex.quote(path) for path in remove)] if remove else []
    if not push:
        return {"prepare": " && ".join(prepare), "finish": ""}
    directories = sorted({posixpath.dirname(item["path"]) for item in push})
    parts = " ".join(shlex.quote(item["part"]) for item in push)
    prepare.append("umask {} && mkdir -p -- {} && rm -rf -- {}".format(
        access["umask"], " ".join(shlex.quote(d) for d in directories), parts))
    finish = ["chmod {} -- {}".format(access["mode"], parts)]
    finish += ["mv -f -T -- {} {}".format(shlex.quote(item["part"]), shlex.quote(item["path"]))
               for item in push]
    return {"prepare": " && ".join(prepare), "finish": " && ".join(finish)}


class PushStepFailed(Exception):
    """A device command or a transfer of a push failed (the device still answers)."""


@contextmanager
def connection_lost_as(lost: Callable[[str], Exception] | None) -> Iterator[None]:
    """A lost connection (AnsibleConnectionFailure) inside the block becomes ``lost(message)``;
    with None it goes up as it is, and Ansible makes the device unreachable."""
    try:
        yield
    except AnsibleConnectionFailure as error:
        if lost is None:
            raise
        raise lost(str(error)) from error


def sender(put_file: Callable[[str, str], None],
           lost: Callable[[str], Exception] | None = None) -> Callable[[str, str], None]:
    """carry_out's ``put`` over a connection's ``put_file``: a transfer that fails while the
    device answers fails the push (PushStepFailed); a lost connection, see
    connection_lost_as."""
    def put(src: str, part: str) -> None:
        with connection_lost_as(lost):
            try:
                put_file(src, part)
            except AnsibleConnectionFailure:
                raise
            except AnsibleError as error:
                raise PushStepFailed(str(error)) from error
    return put


def carry_out(push: list[dict[str, str]], commands: dict[str, str], *,
              run: Callable[[str], dict[str, Any]], put: Callable[[str, str], None]
              ) -> str | None:
    """Carry out a push over a device connection: ``commands['prepare']``, each file of
    ``push`` sent to its part name (``put(src, part)``), ``commands['finish']``.
    ``run(command)``: the command's result (rc, stdout, stderr); ``put`` raises PushStepFailed.
    Why it failed, or None. A device gone is the callables' to raise."""
    step = "removing and creating the directories"
    try:
        _device_command(run, commands["prepare"], step)
        for item in push:
            step = "sending {}".format(item["label"])
            put(item["src"], item["part"])
        if push:
            step = "putting the files in place"
            _device_command(run, commands["finish"], step)
    except PushStepFailed as error:
        return "push to the device failed while {}: {}".format(step, error)
    return None


def _device_command(run: Callable[[str], dict[str, Any]], command: str, step: str) -> None:
    if not command:
        return
    done = run(command)
    if done["rc"] != 0:
        raise PushStepFailed("exit {}: {}".format(
            done["rc"], (done.get("stderr") or done.get("stdout") or "").strip()[-500:]))
