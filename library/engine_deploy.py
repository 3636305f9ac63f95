#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module (runs on the device, Python 3.6 on JetPack 4): install a pushed TensorRT
engine as a new version and switch the model's ``current`` link to it, or roll back.

Its documentation (ansible-doc) is library/engine_deploy.yml, beside it: what is in this file
travels to every device on every call (docs/internals.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.trt_deploy import (
    CURRENT,
    DEPLOY_ENV_MARKER,
    DEPLOY_VENV,
    DEPLOY_WHEELS,
    DIR_FLAGS,
    FILE_FLAGS,
    GUARD_DIR,
    INCOMING,
    MANIFEST,
    PREVIOUS,
    STAGE_INCOMING,
    STAGED_NAME_RE,
    STATEMENT,
    VERSION_RE,
    PlantedLink,
    describe_link,
    intact_version_at,
    kind_at,
    link_version_at,
    listdir_fd,
    open_file_at,
    open_root,
    read_json_at,
    sha256_fd,
    staged_engine_at,
    staged_platforms_at,
    versions_at,
)
from ansible.module_utils.trt_deploy_write import (
    NEW_FILE_FLAGS,
    copy_file_at,
    ensure_dir_at,
    keyring_document_at,
    link_version,
    open_dir_at,
    prune_plan,
    remove_at,
    switch_link_at,
)
from ansible.module_utils.trt_signature import SignatureProblem, check_statement, parse_keyring

PROGRESS_LINE = re.compile(r"^\[\d{4}-\d\d-\d\dT[\d:]+Z\] ")
VERIFY_FIELDS = ("ok", "fps", "median_ms", "problems", "runs")


class DeployError(Exception):
    def __init__(self, kind, message, **details):
        super(DeployError, self).__init__(message)
        self.kind = kind
        self.details = details


def engine_name(model):
    return "TRT_{}.bin".format(model)


def check_manifest(manifest, path, model, platform_id, **expected_keys):
    """Raise DeployError when the manifest at ``path`` is not the engine expected here."""
    if manifest is None:
        raise DeployError("manifest", "{} is missing or not a JSON object".format(path))
    expected = {"model": model, "platform_id": platform_id, "engine_file": engine_name(model)}
    expected.update((key, value) for key, value in expected_keys.items() if value)
    for key in sorted(expected):
        if manifest.get(key) != expected[key]:
            raise DeployError(
                "manifest", "{}: {} is {!r}, expected {!r}: this is not the engine this device "
                "should run".format(path, key, manifest.get(key), expected[key]))


def check_engine_at(source_fd, manifest, source_path):
    """The engine path, after its bytes (read without following a link) matched the
    manifest's sha256."""
    name = manifest["engine_file"]
    path = os.path.join(source_path, name)
    kind = kind_at(source_fd, name)
    if kind == "missing":
        raise DeployError("missing", "{} is missing".format(path))
    try:
        actual = sha256_fd(open_file_at(source_fd, name, path))
    except PlantedLink as error:
        raise DeployError("link", "{}: refused, the deploy reads no engine through a link or "
                          "from a non-regular file".format(error)) from error
    if actual != manifest.get("engine_sha256"):
        raise DeployError(
            "sha256", "{} has sha256 {} but its manifest says {}: the copy is damaged; it was "
            "not installed (the next run pushes it again)".format(
                path, actual, manifest.get("engine_sha256")))
    return path


def read_manifest_at(source_fd, source_path):
    path = os.path.join(source_path, MANIFEST)
    if kind_at(source_fd, MANIFEST) == "link":
        raise DeployError("link", "{}: refused, the deploy reads no manifest through a link"
                          .format(describe_link(path, source_fd, MANIFEST)))
    return read_json_at(source_fd, MANIFEST), path


def load_keyring(root_fd, root):
    """The keys the controller's statements may carry (<root>/bin/keys/trusted-keys.json)."""
    try:
        document, where = keyring_document_at(root_fd, root)
        return parse_keyring(document, where)
    except (OSError, PlantedLink, SignatureProblem) as error:
        raise DeployError("signature", "the deploy's keyring cannot be read ({}): no engine "
                          "can be checked; deploy again (it installs the keyring first)"
                          .format(error)) from error


def check_statement_at(source_fd, source_path, keyring, expected):
    """The payload of the statement beside an engine, which a trusted key signed and which
    vouches for ``expected``; DeployError 'signature' else."""
    path = os.path.join(source_path, STATEMENT)
    if kind_at(source_fd, STATEMENT) == "link":
        raise DeployError("link", "{}: refused, the deploy reads no statement through a link"
                          .format(describe_link(path, source_fd, STATEMENT)))
    try:
        return check_statement(read_json_at(source_fd, STATEMENT), keyring,
                               time.strftime("%Y-%m-%d", time.gmtime()), expected, path)
    except SignatureProblem as problem:
        raise DeployError("signature", "{}: refused, this engine is not one the controller "
                          "signed for this device ({})".format(problem, problem.kind)) \
            from problem


def root_keyring(root):
    root_fd = open_root(root)
    if root_fd is None:
        raise DeployError("signature", "{} does not exist".format(root))
    try:
        return load_keyring(root_fd, root)
    finally:
        os.close(root_fd)


def parse_verify(rc, stdout, stderr):
    """(ok, record, reason) from the builder's `verify --json` run: its one JSON record
    (builder/cli.py: status, kind, message, TensorRT's lines, and the verify result)."""
    try:
        parsed = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("record") != 1:
        # No record: the builder did not start (exit 1: Python's own) or was killed.
        lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
        errors = [line for line in lines if not PROGRESS_LINE.match(line)] or lines
        return False, None, "verify failed (exit {}): {}".format(
            rc, errors[-1] if errors else "verify exited {} without output".format(rc))
    result = parsed.get("result") if isinstance(parsed.get("result"), dict) else {}
    record = {key: result[key] for key in VERIFY_FIELDS if key in result} or None
    if rc == 0 and parsed.get("status") == "ok" and record and record.get("ok") is True:
        return True, record, None
    if record and record.get("problems"):
        reason = "; ".join(str(p) for p in record["problems"])
    else:
        reason = " | ".join([str(line) for line in parsed.get("tensorrt_lines") or []]
                            + [str(parsed.get("message") or "failed")])
    return False, record, "verify failed (exit {}): {} ({})".format(rc, reason,
                                                                    parsed.get("kind"))


def run_verify(module, engine_path):
    argv = list(module.params["verify_command"]) + ["--json", "--", engine_path]
    rc, stdout, stderr = module.run_command(argv)
    ok, record, reason = parse_verify(rc, stdout, stderr)
    if not ok:
        raise DeployError("verify", reason, verify=record)
    return record


LINK_FIX = ("the deploy follows no link below {root}: remove the link (the engines it points at "
            "stay where they are) or move what it points at into {root}, then deploy again")


def open_model_dir(root_fd, root, model, create=False, removed=None):
    """The model directory's fd. A link there is refused (DeployError 'link'), naming it."""
    path = os.path.join(root, model)
    if "/" in model or model in ("", ".", "..") or model.startswith("."):
        raise DeployError("link", "{!r} is not a model name".format(model))
    kind = kind_at(root_fd, model)
    if kind == "link":
        raise DeployError("link", "{}: refused, {}".format(
            describe_link(path, root_fd, model), LINK_FIX.format(root=root)))
    if kind == "missing" and create:
        return ensure_dir_at(root_fd, model, path, removed if removed is not None else [])
    try:
        return open_dir_at(root_fd, model, path)
    except PlantedLink as error:
        raise DeployError("link", "{}: refused, {}".format(
            error, LINK_FIX.format(root=root))) from error


def remove_planted(model_fd, model_dir, removed):
    """Remove the links the layout does not have where the deploy owns the name (version-named
    links, .incoming, a current or previous that names no bare version)."""
    for name in sorted(listdir_fd(model_fd)):
        if kind_at(model_fd, name) != "link":
            continue
        owned = VERSION_RE.match(name) or name == INCOMING or (
            name in (CURRENT, PREVIOUS) and link_version_at(model_fd, name) is None)
        if owned:
            removed.append(describe_link(os.path.join(model_dir, name), model_fd, name))
            os.unlink(name, dir_fd=model_fd)


def prune(model_fd, model, keep):
    """Remove the versions beyond ``keep`` (prune_plan), and version directories that are not
    intact (a missing file, or a link in them) and neither current nor previous."""
    current = link_version_at(model_fd, CURRENT)
    previous = link_version_at(model_fd, PREVIOUS)
    removed = prune_plan(versions_at(model_fd, model), keep, current, previous)
    removed += [name for name in sorted(listdir_fd(model_fd))
                if VERSION_RE.match(name) and name not in (current, previous)
                and kind_at(model_fd, name) == "dir"
                and not intact_version_at(model_fd, name, model)]
    for version in removed:
        remove_at(model_fd, version)
    return removed


def activate(model_fd, model_dir, version, from_version):
    """previous -> the old current, then current -> version (each an atomic rename)."""
    fd = open_dir_at(model_fd, version, os.path.join(model_dir, version))
    try:
        os.utime(fd)  # activation order, for pruning
    finally:
        os.close(fd)
    if from_version and from_version != version:
        switch_link_at(model_fd, PREVIOUS, from_version, model_dir)
    switch_link_at(model_fd, CURRENT, version, model_dir)


def _empty_of_links(version_fd, version_dir, removed):
    for name in sorted(listdir_fd(version_fd)):
        kind = kind_at(version_fd, name)
        if kind != "file":
            path = os.path.join(version_dir, name)
            removed.append(describe_link(path, version_fd, name) if kind == "link"
                           else "{} is not a regular file".format(path))
            remove_at(version_fd, name)


def _prepare_model(root_fd, root, model, version, removed):
    model_dir = os.path.join(root, str(model))
    model_fd = open_model_dir(root_fd, root, str(model), create=True, removed=removed)
    try:
        remove_planted(model_fd, model_dir, removed)
        if version is None:
            return  # a rollback: nothing is pushed
        if not VERSION_RE.match(str(version)):
            raise DeployError("missing", "{!r} is not a version name".format(version))
        incoming_dir = os.path.join(model_dir, INCOMING)
        incoming_fd = ensure_dir_at(model_fd, INCOMING, incoming_dir, removed)
        try:
            version_dir = os.path.join(incoming_dir, version)
            version_fd = ensure_dir_at(incoming_fd, version, version_dir, removed)
            try:
                _empty_of_links(version_fd, version_dir, removed)
            finally:
                os.close(version_fd)
        finally:
            os.close(incoming_fd)
    finally:
        os.close(model_fd)


def _prepare_stage(root_fd, root, item, removed):
    """<model>/.stage-incoming/<platform_id>/<variant>/ real and empty of links."""
    model = str(item.get("model"))
    names = [str(item.get("platform_id")), str(item.get("variant"))]
    if not all(STAGED_NAME_RE.match(name) for name in names):
        raise DeployError("manifest", "{!r} is not a platform_id / variant".format(names))
    model_dir = os.path.join(root, model)
    fds = [open_model_dir(root_fd, root, model, create=True, removed=removed)]
    try:
        path = model_dir
        for name in [STAGE_INCOMING] + names:
            path = os.path.join(path, name)
            fds.append(ensure_dir_at(fds[-1], name, path, removed))
        _empty_of_links(fds[-1], path, removed)
    finally:
        for fd in fds:
            os.close(fd)


GUARD_PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
GUARD_DIR_MODE = 0o755


def _guard_dir_at(dir_fd, name, path, removed, changed, *, enforce=True):
    """The directory ``name`` of ``dir_fd`` (ensure_dir_at), mode 0755 (when made, or
    ``enforce``); its fd."""
    created = kind_at(dir_fd, name) != "dir"
    fd = ensure_dir_at(dir_fd, name, path, removed, mode=GUARD_DIR_MODE)
    if (created or enforce) and stat.S_IMODE(os.fstat(fd).st_mode) != GUARD_DIR_MODE:
        os.fchmod(fd, GUARD_DIR_MODE)
        created = True
    if created:
        changed.append(path + "/")
    return fd


def _same_file_at(dir_fd, name, data, mode):
    """(content equal, mode equal) of the regular file ``name`` of ``dir_fd``."""
    fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        same_mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode) == mode
        return handle.read(len(data) + 1) == data, same_mode


def _write_guard_file_at(dir_fd, name, path, data, *, mode, removed):
    """``data`` as the file ``name`` of ``dir_fd`` with ``mode``; False when it already was."""
    kind = kind_at(dir_fd, name)
    if kind == "file":
        same_data, same_mode = _same_file_at(dir_fd, name, data, mode)
        if same_data and same_mode:
            return False
        if same_data:
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            return True
    elif kind != "missing":
        removed.append(describe_link(path, dir_fd, name) if kind == "link"
                       else "{} is not a regular file".format(path))
        remove_at(dir_fd, name)
    temporary = ".{}.tmp-{}".format(name, os.getpid())
    remove_at(dir_fd, temporary)
    fd = os.open(temporary, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        remove_at(dir_fd, temporary)
        raise
    return True


def install_guard(root_fd, root, files, removed):
    """The guard's files of O(guard) under <root>/bin/, in their order (guard.json last, so
    a run cut short installs again); the paths written or made, relative to the root."""
    changed = []
    bin_dir = os.path.join(root, GUARD_DIR)
    bin_fd = _guard_dir_at(root_fd, GUARD_DIR, bin_dir, removed, changed, enforce=False)
    try:
        for item in files:
            parts = str(item.get("path") or "").split("/")
            if not all(GUARD_PATH_RE.match(part) for part in parts):
                raise DeployError("guard", "{!r} is not a path below {}".format(
                    item.get("path"), bin_dir))
            try:
                mode = int(str(item.get("mode") or "0644"), 8)
            except ValueError:
                raise DeployError("guard", "{!r}: mode {!r} is not octal".format(
                    item.get("path"), item.get("mode"))) from None
            data = str(item.get("content") or "").encode("utf-8")
            fds, path = [bin_fd], bin_dir
            try:
                for part in parts[:-1]:
                    path = os.path.join(path, part)
                    fds.append(_guard_dir_at(fds[-1], part, path, removed, changed))
                path = os.path.join(path, parts[-1])
                if _write_guard_file_at(fds[-1], parts[-1], path, data, mode=mode,
                                        removed=removed):
                    changed.append(path)
            finally:
                for fd in fds[1:]:
                    os.close(fd)
    finally:
        os.close(bin_fd)
    written = []
    for path in changed:
        name = os.path.relpath(path, root) + ("/" if path.endswith("/") else "")
        if name not in written:
            written.append(name)
    return written


def prepare(module, params):
    """Before the push: each model's <root>/<model>/.incoming/<version>/ a real, empty-of-links
    directory; planted links where the deploy owns the name removed and named."""
    root = params["install_root"]
    removed = []
    if module.check_mode:
        return {"changed": False, "removed_links": removed, "msg": "check mode: nothing done"}
    root_fd = open_root(root, create=True)
    try:
        for name in (DEPLOY_VENV, DEPLOY_WHEELS, GUARD_DIR):
            if kind_at(root_fd, name) == "link":
                removed.append(describe_link(os.path.join(root, name), root_fd, name))
                os.unlink(name, dir_fd=root_fd)
        guard = install_guard(root_fd, root, params.get("guard") or [], removed) \
            if params.get("guard") else []
        for item in params["prepare"]:
            _prepare_model(root_fd, root, item.get("model"), item.get("version"), removed)
        for item in params.get("prepare_stage") or []:
            _prepare_stage(root_fd, root, item, removed)
    finally:
        os.close(root_fd)
    for line in removed:
        module.warn("removed a planted link: {} (the deploy follows no link below {})".format(
            line, root))
    return {"changed": bool(removed) or bool(guard), "removed_links": removed,
            "guard_written": guard,
            "msg": "ready: {}".format(", ".join(str(i.get("model")) for i in params["prepare"]))}


# What the deploy venv must import (verify deserializes and runs an engine; no TensorFlow).
ENV_IMPORT_CHECK = ("import builder, yaml, tensorrt; "
                    "print(builder.__version__, tensorrt.__version__)")


def _env_step(module, what, argv):
    rc, stdout, stderr = module.run_command(argv)
    if rc != 0:
        raise DeployError("env", "{} failed (rc {}): {}".format(
            what, rc, "".join((stderr or stdout).strip().splitlines()[-1:])),
            cmd=argv, rc=rc, stdout=stdout, stderr=stderr)
    return stdout


def install_env(module, params):
    """The deploy environment: a venv over the system Python (when it has none), the pushed
    builder wheel installed into it, the import check, then the marker (only when the check
    passed; roles/engine_deploy/tasks/env.yml asserts it on the controller)."""
    root = params["install_root"]
    venv = os.path.join(root, DEPLOY_VENV)
    python = os.path.join(venv, "bin", "python")
    if module.check_mode:
        return {"changed": False, "msg": "check mode: nothing done"}
    if not os.path.exists(python):
        _env_step(module, "creating the deploy venv over {}".format(params["system_python"]),
                  [params["system_python"], "-m", "venv", "--system-site-packages", venv])
    wheel = params["wheel"]
    if not STAGED_NAME_RE.match(wheel):
        raise DeployError("env", "{!r} is not a wheel file name".format(wheel))
    _env_step(module, "installing the builder into {}".format(venv), [
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-index", "--force-reinstall", os.path.join(root, DEPLOY_WHEELS, wheel)])
    rc, stdout, stderr = module.run_command([python, "-c", ENV_IMPORT_CHECK])
    result = {"changed": True, "import_rc": rc, "import_stdout": stdout,
              "import_stderr_lines": stderr.splitlines(), "venv": venv,
              "msg": "deploy venv {}: {}".format(venv, stdout.strip() if rc == 0 else
                                                 "the builder, yaml or tensorrt do not import")}
    if rc == 0:
        data = (json.dumps(params["env_marker"], indent=4, sort_keys=True,
                           separators=(",", ": ")) + "\n").encode("utf-8")
        root_fd = open_root(root)
        try:
            venv_fd = open_dir_at(root_fd, DEPLOY_VENV, venv)
        finally:
            os.close(root_fd)
        try:
            removed = []
            _write_guard_file_at(venv_fd, DEPLOY_ENV_MARKER,
                                 os.path.join(venv, DEPLOY_ENV_MARKER), data, mode=0o644,
                                 removed=removed)
        finally:
            os.close(venv_fd)
        for line in removed:
            module.warn("removed a planted link: {} (the deploy follows no link below {})"
                        .format(line, root))
    return result


def _damaged_and_pushed_again(model_fd, model, version, engine_sha256):
    """The installed version's engine no longer has ``engine_sha256`` (altered on the device)
    and the deploy pushed it again to .incoming/<version>/."""
    if not engine_sha256 or kind_at(model_fd, INCOMING) != "dir":
        return False
    incoming_fd = os.open(INCOMING, DIR_FLAGS, dir_fd=model_fd)
    try:
        if kind_at(incoming_fd, version) != "dir":
            return False
    finally:
        os.close(incoming_fd)
    version_fd = os.open(version, DIR_FLAGS, dir_fd=model_fd)
    try:
        actual = sha256_fd(open_file_at(version_fd, engine_name(model), version))
    finally:
        os.close(version_fd)
    return actual != engine_sha256


def _source(model_fd, model, model_dir, version, removed, *, check_mode=False,
            engine_sha256=None):
    """(fd, path, pushed) of what to install: the intact version directory (unless its engine
    was altered and pushed again), else the pushed copy in .incoming; a version-named link is
    removed first (not in check mode)."""
    if kind_at(model_fd, version) == "link":
        removed.append(describe_link(os.path.join(model_dir, version), model_fd, version))
        if not check_mode:
            os.unlink(version, dir_fd=model_fd)
    if intact_version_at(model_fd, version, model) and not _damaged_and_pushed_again(
            model_fd, model, version, engine_sha256):
        path = os.path.join(model_dir, version)
        return open_dir_at(model_fd, version, path), path, False
    incoming_dir = os.path.join(model_dir, INCOMING)
    if kind_at(model_fd, INCOMING) == "dir":
        incoming_fd = open_dir_at(model_fd, INCOMING, incoming_dir)
        try:
            path = os.path.join(incoming_dir, version)
            kind = kind_at(incoming_fd, version)
            if kind == "dir":
                return open_dir_at(incoming_fd, version, path), path, True
            if kind == "link":
                raise DeployError("link", "{}: refused, the deploy installs nothing through a "
                                  "link".format(describe_link(path, incoming_fd, version)))
        finally:
            os.close(incoming_fd)
    elif kind_at(model_fd, INCOMING) == "link":
        raise DeployError("link", "{}: refused, the deploy installs nothing through a link"
                          .format(describe_link(incoming_dir, model_fd, INCOMING)))
    raise DeployError("missing", "nothing to install: neither {} nor {} exists".format(
        os.path.join(model_dir, version), os.path.join(incoming_dir, version)))


def _open_model(root, model, kind, missing):
    """A directory fd of <root>/<model>, reached without following links; DeployError of
    ``kind`` saying ``missing`` when the root does not exist."""
    root_fd = open_root(root)
    if root_fd is None:
        raise DeployError(kind, missing)
    try:
        return open_model_dir(root_fd, root, model)
    finally:
        os.close(root_fd)


def install(module, params):
    root = params["install_root"]
    model = params["model"]
    version = params["version"]
    model_dir = os.path.join(root, model)
    removed = []
    model_fd = _open_model(root, model, "missing",
                           "nothing to install: {} does not exist".format(root))
    try:
        source_fd, source_path, pushed = _source(model_fd, model, model_dir, version, removed,
                                                 check_mode=module.check_mode,
                                                 engine_sha256=params["engine_sha256"])
        # What current names counts only when it is an intact version: a current naming a
        # version that was a planted link (just removed) runs nothing.
        current = link_version_at(model_fd, CURRENT)
        if current is not None and not intact_version_at(model_fd, current, model):
            current = None
        result = {"from_version": current, "version": version, "model": model,
                  "removed_links": removed}
        try:
            manifest, manifest_path = read_manifest_at(source_fd, source_path)
            check_manifest(manifest, manifest_path, model, params["platform_id"],
                           build_key=params["build_key"], engine_sha256=params["engine_sha256"])
            engine_path = check_engine_at(source_fd, manifest, source_path)
            check_statement_at(source_fd, source_path, root_keyring(root), {
                "model": model, "platform_id": params["platform_id"],
                "build_key": params["build_key"], "engine_sha256": params["engine_sha256"],
                "engine_file": engine_name(model)})
        finally:
            os.close(source_fd)
        if current == version and not pushed:
            return dict(result, changed=bool(removed),
                        msg="{} already runs {}".format(model, version))
        if module.check_mode:
            return dict(result, changed=True, msg="would switch {} from {} to {}".format(
                model, current or "nothing", version))
        result["verify"] = run_verify(module, engine_path)
        if pushed:
            if kind_at(model_fd, version) != "missing":
                # A version directory that is not intact (a link or a missing file in it).
                removed.append("{} was not an intact version (replaced by the pushed copy)"
                               .format(os.path.join(model_dir, version)))
                remove_at(model_fd, version)
            incoming_fd = open_dir_at(model_fd, INCOMING, os.path.join(model_dir, INCOMING))
            try:
                os.rename(version, version, src_dir_fd=incoming_fd, dst_dir_fd=model_fd)
            finally:
                os.close(incoming_fd)
            os.fsync(model_fd)
        remove_planted(model_fd, model_dir, removed)
        activate(model_fd, model_dir, version, current)
        result["removed"] = prune(model_fd, model, params["keep"])
        # What is left in .incoming are pushes that failed their checks: disk is scarce.
        remove_at(model_fd, INCOMING)
    except PlantedLink as error:
        raise DeployError("link", "{}: refused, {}".format(
            error, LINK_FIX.format(root=root))) from error
    finally:
        os.close(model_fd)
    for line in removed:
        module.warn("removed a planted link: {}".format(line))
    return dict(result, changed=True, msg="{}: {} -> {}".format(model, current or "nothing",
                                                                  version))


def rollback(module, params):
    root = params["install_root"]
    model = params["model"]
    model_dir = os.path.join(root, model)
    model_fd = _open_model(root, model, "no_previous", "{}: nothing is installed".format(root))
    try:
        current = link_version_at(model_fd, CURRENT)
        previous = link_version_at(model_fd, PREVIOUS)
        result = {"from_version": current, "model": model, "removed_links": []}
        if previous is None or previous == current or not intact_version_at(
                model_fd, previous, model):
            raise DeployError(
                "no_previous", "{}: no previous version to roll back to (current is {}); "
                "deploy an engine first, the version it replaces becomes the previous "
                "one".format(model_dir, current or "nothing"))
        directory = os.path.join(model_dir, previous)
        source_fd = open_dir_at(model_fd, previous, directory)
        try:
            manifest, manifest_path = read_manifest_at(source_fd, directory)
            check_manifest(manifest, manifest_path, model, params["platform_id"])
            engine_path = check_engine_at(source_fd, manifest, directory)
            check_statement_at(source_fd, directory, root_keyring(root), {
                "model": model, "platform_id": params["platform_id"],
                "engine_sha256": manifest.get("engine_sha256"),
                "engine_file": engine_name(model)})
        finally:
            os.close(source_fd)
        result["version"] = previous
        if module.check_mode:
            return dict(result, changed=True, msg="would roll {} back from {} to {}".format(
                model, current, previous))
        result["verify"] = run_verify(module, engine_path)
        activate(model_fd, model_dir, previous, current)
    except PlantedLink as error:
        raise DeployError("link", "{}: refused, {}".format(
            error, LINK_FIX.format(root=root))) from error
    finally:
        os.close(model_fd)
    return dict(result, changed=True, msg="{}: rolled back {} -> {}".format(
        model, current, previous))


STAGED_FILES = (MANIFEST, STATEMENT)


def _stage_source(model_fd, model_dir, model, item):
    """(fd, path) of what an item stages: the version current names, the pushed copy, or
    what is staged there already (source staged: kept, checked again)."""
    if item.get("source") == "current":
        version = link_version_at(model_fd, CURRENT)
        if version is None or not intact_version_at(model_fd, version, model):
            raise DeployError("missing", "{}: no current engine to stage".format(model_dir))
        return open_dir_at(model_fd, version, os.path.join(model_dir, version)), \
            os.path.join(model_dir, version)
    if item.get("source") == "staged":  # kept where it is, checked again
        path = os.path.join(model_dir, item["platform_id"], item["variant"])
        try:
            platform_fd = open_dir_at(model_fd, item["platform_id"], os.path.dirname(path))
            try:
                return open_dir_at(platform_fd, item["variant"], path), path
            finally:
                os.close(platform_fd)
        except OSError as error:
            raise DeployError("missing", "{}: nothing is staged there ({})".format(
                path, error)) from error
    path = os.path.join(model_dir, STAGE_INCOMING, item["platform_id"], item["variant"])
    try:
        incoming_fd = open_dir_at(model_fd, STAGE_INCOMING,
                                  os.path.join(model_dir, STAGE_INCOMING))
        try:
            platform_fd = open_dir_at(incoming_fd, item["platform_id"], os.path.dirname(path))
        finally:
            os.close(incoming_fd)
        try:
            return open_dir_at(platform_fd, item["variant"], path), path
        finally:
            os.close(platform_fd)
    except OSError as error:
        raise DeployError("missing", "{}: nothing was pushed there ({})".format(path, error)) \
            from error


def _replace_staged(model_fd, model_dir, source, where, removed):
    """<model>/<platform_id>/<variant>/ replaced by copies of the source's files: built in a
    hidden directory beside it, then renamed into place (the guard sees the old or the new).
    ``source``: (fd, path); ``where``: (platform_id, variant, model)."""
    source_fd, source_path = source
    platform_id, variant, model = where
    platform_dir = os.path.join(model_dir, platform_id)
    platform_fd = ensure_dir_at(model_fd, platform_id, platform_dir, removed)
    try:
        fresh = ".new-{}-{}".format(variant, os.getpid())
        remove_at(platform_fd, fresh)
        os.mkdir(fresh, 0o755, dir_fd=platform_fd)
        fresh_fd = open_dir_at(platform_fd, fresh, os.path.join(platform_dir, fresh))
        try:
            for name in (engine_name(model),) + STAGED_FILES:
                copy_file_at(source_fd, fresh_fd, name, os.path.join(source_path, name))
            os.fsync(fresh_fd)
        finally:
            os.close(fresh_fd)
        old = ".old-{}-{}".format(variant, os.getpid())
        if kind_at(platform_fd, variant) != "missing":
            remove_at(platform_fd, old)
            os.rename(variant, old, src_dir_fd=platform_fd, dst_dir_fd=platform_fd)
        os.rename(fresh, variant, src_dir_fd=platform_fd, dst_dir_fd=platform_fd)
        os.fsync(platform_fd)
        remove_at(platform_fd, old)
    finally:
        os.close(platform_fd)


def _renew_statement(model_fd, model_dir, model, item, keyring):
    """A statement re-signed on the controller (key rotation, store repair) for the engine
    current runs, pushed to .stage-incoming/<platform_id>/<variant>/: checked against that
    version's manifest, then renamed over the version's own statement.json."""
    version = link_version_at(model_fd, CURRENT)
    if version is None or not intact_version_at(model_fd, version, model):
        raise DeployError("missing", "{}: no current engine to stage".format(model_dir))
    pushed_fd, pushed_path = _stage_source(model_fd, model_dir, model,
                                           dict(item, source="pushed"))
    version_path = os.path.join(model_dir, version)
    version_fd = open_dir_at(model_fd, version, version_path)
    try:
        manifest, manifest_path = read_manifest_at(version_fd, version_path)
        check_manifest(manifest, manifest_path, model, item["platform_id"])
        check_statement_at(pushed_fd, pushed_path, keyring, {
            "model": model, "platform_id": item["platform_id"],
            "engine_file": engine_name(model), "build_key": manifest.get("build_key"),
            "engine_sha256": manifest.get("engine_sha256")})
        temporary = ".{}.tmp-{}".format(STATEMENT, os.getpid())
        remove_at(version_fd, temporary)
        copy_file_at(pushed_fd, version_fd, STATEMENT, os.path.join(pushed_path, STATEMENT),
                     target_name=temporary)
        os.rename(temporary, STATEMENT, src_dir_fd=version_fd, dst_dir_fd=version_fd)
        os.fsync(version_fd)
    finally:
        os.close(version_fd)
        os.close(pushed_fd)


def _stage_item(model_fd, model_dir, model, item, *, keyring, removed):
    platform_id = str(item.get("platform_id"))
    if not STAGED_NAME_RE.match(platform_id) or VERSION_RE.match(platform_id) or \
            ((item.get("source") != "current" or item.get("statement")) and
             not STAGED_NAME_RE.match(str(item.get("variant")))):
        raise DeployError("manifest", "{!r} / {!r} is not a platform_id / variant".format(
            platform_id, item.get("variant")))
    if item.get("source") == "current" and item.get("statement") == "pushed":
        _renew_statement(model_fd, model_dir, model, item, keyring)
    source_fd, source_path = _stage_source(model_fd, model_dir, model, item)
    try:
        expected = {"model": model, "platform_id": platform_id,
                    "engine_file": engine_name(model)}
        expected.update((key, item[key]) for key in ("variant", "build_key", "engine_sha256")
                        if item.get(key))
        payload = check_statement_at(source_fd, source_path, keyring, expected)
        manifest, manifest_path = read_manifest_at(source_fd, source_path)
        check_manifest(manifest, manifest_path, model, platform_id,
                       build_key=payload["build_key"], engine_sha256=payload["engine_sha256"])
        check_engine_at(source_fd, manifest, source_path)
        variant = str(payload.get("variant"))
        if not STAGED_NAME_RE.match(variant):
            raise DeployError("signature", "{}: variant {!r} is not a directory name".format(
                source_path, variant))
        outcome = {"model": model, "platform_id": platform_id, "variant": variant,
                   "engine_sha256": payload["engine_sha256"]}
        target = os.path.join(model_dir, platform_id, variant)
        existing, same = None, False
        if kind_at(model_fd, platform_id) == "dir":
            platform_fd = open_dir_at(model_fd, platform_id, os.path.dirname(target))
            try:
                if kind_at(platform_fd, variant) == "dir":
                    variant_fd = open_dir_at(platform_fd, variant, target)
                    try:
                        existing = staged_engine_at(variant_fd, model)
                        same = read_json_at(variant_fd, STATEMENT) == read_json_at(
                            source_fd, STATEMENT)
                    finally:
                        os.close(variant_fd)
            finally:
                os.close(platform_fd)
        if existing and existing["intact"] and same:
            return dict(outcome, status="up to date", detail=target, changed=False)
        _replace_staged(model_fd, model_dir, (source_fd, source_path),
                        (platform_id, variant, model), removed)
    finally:
        os.close(source_fd)
    detail = "{} from {}".format(target, source_path)
    if existing and not existing["intact"]:
        detail = ("refused the staged engine {}: its bytes do not match the sha256 its "
                  "statement names (altered?); restored it from {}".format(target, source_path))
    return dict(outcome, status="staged", detail=detail, changed=True)


def stage(module, params):
    """Install each item's verified engine where the guard finds it; one item's refusal does
    not stop the others (its outcome says why; what was staged there before stays)."""
    root = params["install_root"]
    outcomes, removed = [], []
    if module.check_mode:
        return {"changed": False, "staged": outcomes, "removed_links": removed,
                "msg": "check mode: nothing staged"}
    root_fd = open_root(root)
    if root_fd is None:
        raise DeployError("missing", "{} does not exist".format(root))
    try:
        keyring = load_keyring(root_fd, root)
        models = sorted({str(item.get("model")) for item in params["stage"]})
        for model in models:
            if model == GUARD_DIR:
                raise DeployError("link", "{!r} is the guard's directory, not a model".format(
                    model))
            model_dir = os.path.join(root, model)
            model_fd = open_model_dir(root_fd, root, model, create=True, removed=removed)
            try:
                items = [item for item in params["stage"] if str(item.get("model")) == model]
                for item in items:
                    try:
                        outcomes.append(_stage_item(model_fd, model_dir, model, item,
                                                    keyring=keyring, removed=removed))
                    except DeployError as error:
                        outcomes.append({"model": model, "platform_id": item.get("platform_id"),
                                         "variant": item.get("variant"), "changed": False,
                                         "engine_sha256": item.get("engine_sha256"),
                                         "status": "refused", "detail": str(error)})
                wanted = {str(item.get("platform_id")) for item in items}
                for platform_id in staged_platforms_at(model_fd):
                    if platform_id not in wanted:
                        remove_at(model_fd, platform_id)
                        outcomes.append({"model": model, "platform_id": platform_id,
                                         "variant": None, "engine_sha256": None,
                                         "changed": True, "status": "removed",
                                         "detail": "no longer staged"})
                remove_at(model_fd, STAGE_INCOMING)
            finally:
                os.close(model_fd)
    finally:
        os.close(root_fd)
    for line in removed:
        module.warn("removed a planted link: {}".format(line))
    return {"changed": any(o["changed"] for o in outcomes) or bool(removed),
            "staged": outcomes, "removed_links": removed,
            "msg": "; ".join("{model} {platform_id}: {status}".format(**o) for o in outcomes)}


def main():
    module = AnsibleModule(
        argument_spec={
            "install_root": {"type": "path", "required": True},
            "model": {"type": "str"},
            "state": {"type": "str",
                      "choices": ["present", "rollback", "prepare", "stage", "env"],
                      "default": "present"},
            "stage": {"type": "list", "elements": "dict", "default": []},
            "prepare_stage": {"type": "list", "elements": "dict", "default": []},
            "prepare": {"type": "list", "elements": "dict", "default": []},
            "guard": {"type": "list", "elements": "dict", "default": []},
            "version": {"type": "str"},
            "system_python": {"type": "str"},
            "wheel": {"type": "str"},
            "env_marker": {"type": "dict"},
            "build_key": {"type": "str"},
            "engine_sha256": {"type": "str"},
            "platform_id": {"type": "str"},
            "verify_command": {"type": "list", "elements": "str"},
            "keep": {"type": "int", "default": 2},
        },
        required_if=[
            ("state", "present", ("model", "version", "build_key", "engine_sha256",
                                  "platform_id", "verify_command")),
            ("state", "rollback", ("model", "platform_id", "verify_command")),
            ("state", "env", ("system_python", "wheel", "env_marker")),
        ],
        supports_check_mode=True,
    )
    params = module.params
    what = params["model"] or params["state"]
    try:
        if params["state"] == "prepare":
            result = prepare(module, params)
        elif params["state"] == "stage":
            result = stage(module, params)
        elif params["state"] == "env":
            result = install_env(module, params)
        elif params["state"] == "present":
            result = install(module, params)
        else:
            result = rollback(module, params)
    except DeployError as error:
        from_version = None
        if params["model"]:
            from_version = link_version(os.path.join(params["install_root"], params["model"]),
                                        CURRENT)
        module.fail_json(msg="engine_deploy {}: {}".format(what, error),
                         deploy_failure=error.kind, model=params["model"],
                         from_version=from_version, **error.details)
    except PlantedLink as error:
        module.fail_json(msg="engine_deploy {}: {}: refused, {}".format(
            what, error, LINK_FIX.format(root=params["install_root"])),
            deploy_failure="link", model=params["model"])
    except OSError as error:
        module.fail_json(msg="engine_deploy {}: {}".format(what, error),
                         deploy_failure="os", model=params["model"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
