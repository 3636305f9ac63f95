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
    # engine_deploy state=env writes it (library/engine_deploy.py imports the name).
    tasks = yaml.safe_load((REPO / "roles/engine_deploy/tasks/env.yml").read_text())
    marked = [task["engine_deploy"] for task in tasks
              if "env.marker" in str((task.get("engine_deploy") or {}).get("env_marker"))]
    assert [task["state"] for task in marked] == ["env"]
    source = (REPO / "library/engine_deploy.py").read_text()
    assert "DEPLOY_ENV_MARKER" in source and trt_deploy.DEPLOY_ENV_MARKER not in source
