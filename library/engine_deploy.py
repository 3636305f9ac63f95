#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module (runs on the device, Python 3.6 on JetPack 4): install a pushed TensorRT
engine as a new version and switch the model's ``current`` link to it, or roll back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.trt_deploy import (
    CURRENT,
    INCOMING,
    MANIFEST,
    PREVIOUS,
    file_sha256,
    fsync_dir,
    link_version,
    prune_plan,
    read_json,
    remove_tree,
    switch_link,
    versions,
)

DOCUMENTATION = r"""
---
module: engine_deploy
short_description: Install a verified TensorRT engine version and switch its current link
description:
  - C(state=present) takes the engine and manifest pushed to
    C(<install_root>/<model>/.incoming/<version>/) (or an already installed
    C(<install_root>/<model>/<version>/)), checks that the manifest is the expected model,
    platform and build key and that the engine's sha256 is the expected one, runs the
    builder's verify command on it (deserialize and run on this device), and only then
    renames it to C(<install_root>/<model>/<version>/) and points C(current) at it (a
    temporary link renamed over C(current)). The version that was current becomes
    C(previous). Older versions beyond O(keep) are removed.
  - C(state=rollback) verifies the version C(previous) points at and swaps C(current) and
    C(previous).
  - A failure (sha256, manifest, verify) leaves C(current) untouched; the result says which
    check failed in C(deploy_failure).
options:
  install_root:
    description: Root of the installed engines, one directory per model.
    type: path
    required: true
  model:
    description: Catalog model name; the engine file must be C(TRT_<model>.bin).
    type: str
    required: true
  state:
    description: C(present) installs O(version); C(rollback) switches back to C(previous).
    type: str
    choices: [present, rollback]
    default: present
  version:
    description: Version directory name (first 12 hex of the build key and of the engine sha256).
    type: str
  build_key:
    description: Build key the manifest must carry (state=present).
    type: str
  engine_sha256:
    description: sha256 the engine must have (state=present).
    type: str
  platform_id:
    description: This device's platform_id; the manifest must say the same.
    type: str
    required: true
  verify_command:
    description:
      - Command (argv) that verifies an engine; the engine path and C(--json) are appended.
        Normally C([<venv>/bin/python, -m, builder, verify]).
    type: list
    elements: str
    required: true
  keep:
    description: How many versions besides C(current) to keep (C(previous) always stays).
    type: int
    default: 2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: Jetson engine builder maintainers
"""

EXAMPLES = r"""
- name: Install and switch to a pushed engine
  engine_deploy:
    install_root: /opt/trt-engines
    model: ssd_mobilenet_v2_coco
    version: 3f2a9c0d1e2b-9a8b7c6d5e4f
    build_key: 3f2a9c0d1e2b...
    engine_sha256: 9a8b7c6d5e4f...
    platform_id: jetson-nano_l4t32.7.1_trt8.2.1
    verify_command: [/opt/trt-engines/.deploy-venv/bin/python, -m, builder, verify]
"""

RETURN = r"""
version:
  description: The version C(current) points at after the task.
  type: str
  returned: success
from_version:
  description: The version C(current) pointed at before (null for a first install).
  type: str
  returned: always
verify:
  description: The verify record (ok, fps, median_ms, problems) of the engine that was checked.
  type: dict
  returned: when verify ran
deploy_failure:
  description: Which check failed - missing, manifest, sha256, verify, no_previous.
  type: str
  returned: failure
"""

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


def check_engine(directory, manifest):
    """The engine path, after its bytes matched the manifest's sha256."""
    path = os.path.join(directory, manifest["engine_file"])
    if not os.path.isfile(path):
        raise DeployError("missing", "{} is missing".format(path))
    actual = file_sha256(path)
    if actual != manifest.get("engine_sha256"):
        raise DeployError(
            "sha256", "{} has sha256 {} but its manifest says {}: the copy is damaged; it was "
            "not installed (the next run pushes it again)".format(
                path, actual, manifest.get("engine_sha256")))
    return path


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


def prune(model_dir, keep):
    current = link_version(model_dir, CURRENT)
    previous = link_version(model_dir, PREVIOUS)
    removed = prune_plan(versions(model_dir), keep, current, previous)
    for version in removed:
        remove_tree(os.path.join(model_dir, version))
    return removed


def activate(model_dir, version, from_version):
    """previous -> the old current, then current -> version (each an atomic rename)."""
    os.utime(os.path.join(model_dir, version), None)  # activation order, for pruning
    if from_version and from_version != version:
        switch_link(model_dir, PREVIOUS, from_version)
    switch_link(model_dir, CURRENT, version)


def install(module, params):
    model = params["model"]
    version = params["version"]
    model_dir = os.path.join(params["install_root"], model)
    version_dir = os.path.join(model_dir, version)
    incoming_dir = os.path.join(model_dir, INCOMING, version)
    current = link_version(model_dir, CURRENT)
    result = {"from_version": current, "version": version, "model": model}
    source = version_dir if os.path.isdir(version_dir) else incoming_dir
    if not os.path.isdir(source):
        raise DeployError("missing", "nothing to install: neither {} nor {} exists".format(
            version_dir, incoming_dir))
    manifest_path = os.path.join(source, MANIFEST)
    check_manifest(read_json(manifest_path), manifest_path, model, params["platform_id"],
                   build_key=params["build_key"], engine_sha256=params["engine_sha256"])
    engine_path = check_engine(source, read_json(manifest_path))
    if current == version:
        return dict(result, changed=False, msg="{} already runs {}".format(model, version))
    if module.check_mode:
        return dict(result, changed=True, msg="would switch {} from {} to {}".format(
            model, current or "nothing", version))
    result["verify"] = run_verify(module, engine_path)
    if source == incoming_dir:
        os.rename(incoming_dir, version_dir)
        fsync_dir(model_dir)
    activate(model_dir, version, current)
    result["removed"] = prune(model_dir, params["keep"])
    # What is left in .incoming are pushes that failed their checks: disk is scarce.
    if os.path.isdir(os.path.dirname(incoming_dir)):
        remove_tree(os.path.dirname(incoming_dir))
    return dict(result, changed=True, msg="{}: {} -> {}".format(model, current or "nothing",
                                                                  version))


def rollback(module, params):
    model = params["model"]
    model_dir = os.path.join(params["install_root"], model)
    current = link_version(model_dir, CURRENT)
    previous = link_version(model_dir, PREVIOUS)
    result = {"from_version": current, "model": model}
    if previous is None or previous == current or not os.path.isdir(
            os.path.join(model_dir, previous)):
        raise DeployError(
            "no_previous", "{}: no previous version to roll back to (current is {}); deploy "
            "an engine first, the version it replaces becomes the previous one".format(
                model_dir, current or "nothing"))
    directory = os.path.join(model_dir, previous)
    manifest_path = os.path.join(directory, MANIFEST)
    manifest = read_json(manifest_path)
    check_manifest(manifest, manifest_path, model, params["platform_id"])
    engine_path = check_engine(directory, manifest)
    result["version"] = previous
    if module.check_mode:
        return dict(result, changed=True, msg="would roll {} back from {} to {}".format(
            model, current, previous))
    result["verify"] = run_verify(module, engine_path)
    activate(model_dir, previous, current)
    return dict(result, changed=True, msg="{}: rolled back {} -> {}".format(
        model, current, previous))


def main():
    module = AnsibleModule(
        argument_spec={
            "install_root": {"type": "path", "required": True},
            "model": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "rollback"], "default": "present"},
            "version": {"type": "str"},
            "build_key": {"type": "str"},
            "engine_sha256": {"type": "str"},
            "platform_id": {"type": "str", "required": True},
            "verify_command": {"type": "list", "elements": "str", "required": True},
            "keep": {"type": "int", "default": 2},
        },
        required_if=[("state", "present", ("version", "build_key", "engine_sha256"))],
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["state"] == "present":
            result = install(module, params)
        else:
            result = rollback(module, params)
    except DeployError as error:
        module.fail_json(msg="engine_deploy {}: {}".format(params["model"], error),
                         deploy_failure=error.kind, model=params["model"],
                         from_version=link_version(
                             os.path.join(params["install_root"], params["model"]), CURRENT),
                         **error.details)
    except OSError as error:
        module.fail_json(msg="engine_deploy {}: {}".format(params["model"], error),
                         deploy_failure="os", model=params["model"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
