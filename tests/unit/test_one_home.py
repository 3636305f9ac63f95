"""Facts that have one home in Python and a copy where a file must stand alone: each copy is
checked against its home here (issue 29: each fact in one home)."""

import inspect
from pathlib import Path

import yaml

from builder import atomic
from module_utils import trt_deploy

REPO = Path(__file__).resolve().parents[2]


def test_the_deploy_guards_sha256_is_the_builders():
    # module_utils/trt_deploy.py runs in the deploy guard without the builder package.
    assert inspect.getsource(trt_deploy.sha256_of) == inspect.getsource(atomic.sha256_of)


def test_the_builder_env_marker_name_of_jetson_env_is_the_one_jetson_facts_reads():
    variables = yaml.safe_load((REPO / "roles/jetson_env/vars/main.yml").read_text())
    assert variables["jetson_env_marker_name"] == trt_deploy.BUILDER_ENV_MARKER


def test_the_deploy_env_marker_engine_deploy_writes_is_the_one_jetson_facts_reads():
    tasks = yaml.safe_load((REPO / "roles/engine_deploy/tasks/env.yml").read_text())
    written = [task["ansible.builtin.copy"]["dest"] for task in tasks
               if ".marker" in str((task.get("ansible.builtin.copy") or {}).get("content"))]
    assert written == ["{{ engine_deploy_venv }}/" + trt_deploy.DEPLOY_ENV_MARKER]
