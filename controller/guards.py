"""Guard rails on the operator's inputs: what a typo or a bad copy-paste must not do.

The catalog's owner is trusted for intent (docs/threat-model.md), not for typos: a store
directory of ``/`` or ``~`` would have the controller lock, index, scan and "repair" the whole
system or home directory (the store tool removes what looks like leftovers); an allowed graph
directory of ``/`` or ``/etc`` would let a catalog entry ship any controller file to every
device; an install root of ``/`` or ``/etc`` would have the deploy create and prune directories
there. A YAML alias bomb (a "billion laughs": anchors repeated inside anchors) in one variable
makes Ansible's templating walk 10^9 items and the run hang before it reports anything; a
control character in a name (a trailing newline from a YAML block scalar) becomes part of a
directory name and of a command line. Each is refused in the preflight, with the host, the
file and the key, before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import pwd

from .trust import control_characters

# The directories themselves: an engine store, a graph directory or an install root must be a
# directory of its own below them, never one of them.
SYSTEM_DIRS = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/lost+found", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv",
    "/sys", "/tmp", "/usr", "/var",
    "/dev/shm", "/run/user", "/run/lock",
    "/usr/bin", "/usr/games", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64",
    "/usr/libexec", "/usr/libx32", "/usr/local", "/usr/sbin", "/usr/share", "/usr/src",
    "/usr/local/bin", "/usr/local/etc", "/usr/local/games", "/usr/local/include",
    "/usr/local/lib", "/usr/local/man", "/usr/local/sbin", "/usr/local/share", "/usr/local/src",
    "/var/backups", "/var/cache", "/var/crash", "/var/lib", "/var/local", "/var/lock",
    "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/var/www",
))
# Trees that belong to the operating system as a whole: nothing of ours goes anywhere in them.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                "/proc", "/sbin", "/sys", "/usr")
# ... except this part of /usr, which is the administrator's.
LOCAL_TREE = "/usr/local"
# The most items a user variable may expand to (its YAML aliases followed): a catalog's model
# list is tens of names; a "billion laughs" is 10^9.
MAX_ITEMS = 10000


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def home_directories() -> set[str]:
    """Every account's home directory on this machine, and the running user's."""
    homes = {os.path.realpath(os.path.expanduser("~"))}
    with contextlib.suppress(OSError):
        homes |= {os.path.normpath(entry.pw_dir) for entry in pwd.getpwall()
                  if entry.pw_dir.startswith("/")}
    return homes


def _why_system(path: str, homes: set[str], holds: dict[str, str]) -> str | None:
    if path in SYSTEM_DIRS:
        return "a system directory"
    for tree in SYSTEM_TREES:
        if _inside(path, tree) and not _inside(path, LOCAL_TREE):
            return "inside the system tree {}".format(tree)
    if path in homes or os.path.dirname(path) == "/home":
        return "a home directory itself"
    for what, held in sorted(holds.items()):
        if held == path:
            return what
        if _inside(held, path):
            return "a directory that holds {} ({})".format(what, held)
    return None


def system_path_problem(value: str, *, homes: set[str] | None = None,
                        holds: dict[str, str] | None = None, base: str | None = None,
                        resolve: bool = True) -> str | None:
    """Why ``value`` must not be used as a directory of ours (None when it may).

    It is refused when it is (as written, made absolute and normalized, or resolved through
    links) a system directory (SYSTEM_DIRS), inside a system tree (SYSTEM_TREES but
    /usr/local), a home directory itself (``homes``), or a directory that holds one of
    ``holds`` ({what: path}: the repository, the catalog's directory). ``base``: what a
    relative value is relative to (the current directory by default). ``resolve``: false for
    a path on a device (it cannot be resolved here; every /home/<name> counts as a home).
    """
    homes = home_directories() if homes is None else homes
    holds = {what: os.path.realpath(path) for what, path in (holds or {}).items()}
    written = os.path.normpath(os.path.join(base or os.getcwd(), os.path.expanduser(value)
                                            if resolve else value))
    resolved = os.path.realpath(written) if resolve else written
    for candidate in dict.fromkeys((written, resolved)):
        why = _why_system(candidate, homes, holds)
        if why:
            if candidate != written:
                shown = "{} (resolves to {})".format(value, candidate)
            elif written != value:
                shown = "{} ({})".format(value, written)
            else:
                shown = value
            return "{} is {}".format(shown, why)
    return None


def expanded_size_exceeds(value: object, limit: int = MAX_ITEMS) -> bool:
    """True when ``value``, with its YAML aliases followed, holds more than ``limit`` items.

    YAML aliases load as one shared object, so the loaded value is small; Ansible's templating
    (and any repr) walks every path through it. This walk stops at ``limit``.
    """
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            count += len(item)
            pending.extend(item)
        if count > limit:
            return True
    return False


def control_character_problem(value: str, what: str, shown: str | None = None) -> str | None:
    """``shown``: how the message shows the value (a secret's, masked), else its repr."""
    found = control_characters(value)
    if not found:
        return None
    return "{} {} contains a control character ({}), which would become part of a " \
        "directory name and a command line".format(what, shown or repr(value),
                                                   ", ".join(found[:3]))
