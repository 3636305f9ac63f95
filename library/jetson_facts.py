#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: Jetson platform facts plus the device-side state of the engine builder.

Runs on the device (Python 3.6 on JetPack 4). The platform detection is the builder's own
code (builder/platform/detect.py), shipped through module_utils/jetson_builder -> ../builder so
that there is one copy of it.

Its documentation (ansible-doc) is library/jetson_facts.yml, beside it: what is in this file
travels to every device on every run (docs/internals.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jetson_builder import graphsums, layout
from ansible.module_utils.jetson_builder.errors import UserError
from ansible.module_utils.jetson_builder.platform.detect import (
    detect_platform,
    tensorrt_generation,
    version_tuple,
)
from ansible.module_utils.jetson_builder.trt import enginepath
from ansible.module_utils.trt_deploy import (
    BUILDER_ENV_MARKER,
    deploy_env_marker,
    guard_marker,
    install_state,
    read_json,
    root_links,
)

# The builder's directory when the task passes none: the controller's one default
# (controller/schema.py BUILDER_ROOT_DIR, which the facts step passes), copied here because
# this module runs alone on the device; tests/unit/test_root_dir.py keeps the two equal.
ROOT_DIR = "/opt/trt-builder"


def model_state(model_dir):
    graphs = {}
    engines = {}
    sums = graphsums.recorded(model_dir)  # what the builder read: no need to read it again
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(graphsums.GRAPH_SUFFIXES):
            graphs[name] = graphsums.graph_sha256(model_dir, name, sums)
        elif name.endswith(".bin"):
            engines[name] = os.path.getsize(path)
    manifest = read_json(os.path.join(model_dir, "manifest.json"))
    return {
        "graphs": graphs,
        "engines": engines,
        "build_key": manifest.get("build_key") if isinstance(manifest, dict) else None,
    }


def free_mib(path):
    """Free MiB on the file system that holds ``path`` (or its nearest existing parent)."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize // (1024 * 1024)


def builder_state(root_dir):
    venv_dir = layout.venv_dir(root_dir)
    work_dir = layout.work_dir(root_dir)
    models = {}
    if os.path.isdir(work_dir):
        for name in sorted(os.listdir(work_dir)):
            model_dir = os.path.join(work_dir, name)
            if os.path.isdir(model_dir):
                models[name] = model_state(model_dir)
    return {
        "root_dir": root_dir,
        "free_mib": free_mib(root_dir),
        "env_marker": read_json(os.path.join(venv_dir, BUILDER_ENV_MARKER)),
        "builder_marker": read_json(layout.builder_marker(root_dir)),
        "models": models,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "root_dir": {"type": "path", "default": ROOT_DIR},
            "device_root": {"type": "path", "default": "/"},
            "install_root": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        platform = detect_platform(module.params["device_root"])
    except UserError as error:
        module.fail_json(msg=str(error), jetson_failure="not_jetson")
    generation, reason = tensorrt_generation(platform["tensorrt"])
    numbers = version_tuple(platform["tensorrt"] or "")
    platform = dict(
        platform,
        tensorrt_generation=generation,
        # One rule for the roles (jetson_env): builder/trt/enginepath.py's.
        tensorrt_has_uff=bool(numbers) and enginepath.can_build(enginepath.UFF, numbers),
    )
    if generation is None:
        # No TensorRT, or one the builder knows nothing about: nothing can run here.
        module.fail_json(
            msg="Unsupported JetPack on {} (L4T {}, JetPack {}): {}".format(
                platform["module"], platform["l4t"], platform["jetpack"] or "unknown", reason
            ),
            jetson_failure="unsupported_jetpack",
            ansible_facts={"jetson": platform},
        )
    # Shown by Ansible as [WARNING] lines: no extra task per host just to print them.
    for warning in platform["warnings"]:
        module.warn("{}: {}".format(platform["platform_id"], warning))
    facts = {"jetson": platform, "jetson_state": builder_state(module.params["root_dir"])}
    install_root = module.params["install_root"]
    if install_root:
        facts["jetson_deployed"] = {
            "install_root": install_root,
            # Read without following any link below install_root (module_utils/trt_deploy.py).
            "env_marker": deploy_env_marker(install_root),
            "models": install_state(install_root),
            "links": root_links(install_root),
            # What the deploy installed of the guard and its keyring (bin/guard.json).
            "guard_marker": guard_marker(install_root),
        }
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
