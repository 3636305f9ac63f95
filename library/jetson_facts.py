#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: Jetson platform facts plus the device-side state of the engine builder.

Runs on the device (Python 3.6 on JetPack 4). The platform detection is the builder's own
code (builder/platform/detect.py), shipped through module_utils/jetson_builder -> ../builder so
that there is one copy of it.
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

DOCUMENTATION = r"""
---
module: jetson_facts
short_description: Detect the Jetson platform and the engine builder's state on the device
description:
  - Detects the Jetson module, SoC, compute capability, L4T / JetPack release and the TensorRT,
    CUDA and cuDNN versions with the builder's own detection code (C(builder/platform/detect.py)),
    and derives the C(platform_id), the key under which engines are portable.
  - In the same call reports the device-side state under O(root_dir) so that a run with
    nothing to do needs one remote module execution per device - the environment marker
    written by the jetson_env role, the builder install's marker in the venv, the sha256 of
    the graphs in the work directory and the engines and manifests present.
  - Fails for a host that is not a Jetson, or whose TensorRT is missing or of a generation
    the builder does not know, with a message saying what was found; other hosts go on.
    Every generation the builder knows (TensorRT 5 to 8.6, 10 and 11) is built for. TensorRT
    10 and 11 have no UFF parser (C(tensorrt_has_uff=false)); their models build from ONNX,
    and the plan refuses a model that has no ONNX path there.
version_added: "0.1.0"
author: Jetson engine builder maintainers
options:
  root_dir:
    description:
      - Directory of the builder on the device (venv in C(<root_dir>/venv), work directory in
        C(<root_dir>/work/<model>/)). It does not have to exist.
    type: path
    default: /opt/trt-builder
  device_root:
    description:
      - Root of the filesystem whose platform is detected. C(/) on a device; a mounted root
        filesystem image (for example a flashed image mounted on the controller) otherwise.
      - O(root_dir) is always read on the running system.
    type: path
    default: /
  install_root:
    description:
      - Root of the engines installed by deploy_engines.yml (C(<install_root>/<model>/current)).
        When set, C(ansible_facts.jetson_deployed) reports per model the C(current) and
        C(previous) versions (build key, platform_id, engine sha256 from their manifests, no
        hashing) and the installed version names, and the marker of the deploy
        environment C(<install_root>/.deploy-venv). It does not have to exist.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Reads files only; never changes anything (C(changed) is always false).
"""

EXAMPLES = r"""
- name: Detect the platform and the builder's state
  jetson_facts:
    root_dir: /opt/trt-builder

- name: Show the platform id
  ansible.builtin.debug:
    msg: "{{ ansible_facts.jetson.platform_id }}: {{ ansible_facts.jetson_state.models | list }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    jetson:
      description:
        - The detected platform (keys of C(builder.platform.detect.detect_platform)) plus
          C(tensorrt_generation) (trt5_6, trt7, trt8_0, trt8_4, trt10, trt11),
          C(tensorrt_has_uff) (the UFF parser, and JetPack's uff and graphsurgeon packages
          with it, in TensorRT 5 to 8.6).
      returned: always
      type: dict
      sample:
        module: jetson-nano
        soc: tegra210
        compute_capability: "5.3"
        l4t: 32.7.1
        jetpack: 4.6.1
        tensorrt: 8.2.1
        cuda: "10.2"
        cudnn: 8.2.1
        python: 3.6.9
        platform_id: jetson-nano_l4t32.7.1_trt8.2.1
        dla_cores: 0
        memory_mib: 3964
        warnings: []
        tensorrt_generation: trt8_0
        tensorrt_has_uff: true
    jetson_state:
      description: What the builder left on the device.
      returned: always
      type: dict
      contains:
        root_dir:
          description: The inspected root directory.
          type: str
        free_mib:
          description: Free MiB on the file system of O(root_dir) (or its nearest existing parent).
          type: int
        env_marker:
          description:
            - Content of C(<root_dir>/venv/trt-builder-env.json), null when absent or unreadable.
          type: dict
        builder_marker:
          description:
            - Content of C(<root_dir>/venv/trt-builder-installed.json), which the builder's
              install writes (its version and source digest), null when absent or unreadable.
          type: dict
        models:
          description:
            - One entry per directory in C(<root_dir>/work/) with C(graphs) (file name ->
              sha256 of every C(.pb) and C(.onnx) file, the one the builder recorded
              while the file is unchanged, C(builder/graphsums.py)), C(engines) (file name
              -> size in bytes of every C(.bin) file) and C(build_key) (the C(build_key) of
              C(manifest.json), or null when it is absent or unreadable).
            - Only the build key of the manifest comes back, not the manifest, as the controller
              needs no more, and each string of a result costs the controller time to carry
              and to copy into the host's variables for every later task.
          type: dict
    jetson_deployed:
      description: Installed engines under O(install_root) (only when O(install_root) is set).
      returned: when install_root is set
      type: dict
      contains:
        install_root:
          description: The inspected install root.
          type: str
        env_marker:
          description:
            - Content of C(<install_root>/.deploy-venv/trt-deploy-env.json) (the builder version
              and source digest the engine_deploy role installed there), or null (also when
              C(.deploy-venv) is a link).
          type: dict
        models:
          description:
            - model -> C(current) and C(previous) (null or C(version), C(build_key),
              C(platform_id), C(engine_sha256), C(engine_file)), C(versions) (intact installed
              version names, oldest activation first) and C(links) (links planted where the
              deploy owns the name, each with its target).
            - Nothing below O(install_root) is read through a link (module_utils/trt_deploy.py);
              a C(current) naming no bare version, a version directory that is a link or holds
              one, count as absent. A model directory that is a link has C(link) (its
              description) and is not entered.
            - C(staged) - platform_id -> variant -> C(engine_sha256) and C(key_id) as the
              staged statement says, and C(intact) (the engine's bytes hashed match it).
            - C(current) also has C(intact) - its engine's bytes hashed still have its
              manifest's sha256.
          type: dict
        links:
          description: C(.deploy-venv), C(.deploy-wheels) or C(bin) when they are links.
          type: list
          elements: str
        guard_marker:
          description: Content of C(<install_root>/bin/guard.json) (what the deploy installed
            of the guard trt-engine-path and its keyring), or null.
          type: dict
"""

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
