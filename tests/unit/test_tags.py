"""The playbooks' tags (controller/tags.py, README "Steps and tags"): the controller's reading of
--tags / --skip-tags is Ansible's, the device steps' tags are those of device_round.yml, the
safety steps cannot be skipped by their step's name, and a run whose tags leave the build out
reports its plan instead of failures."""

import itertools

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task

from controller import report, tags

from .plugin_files import REPO, ansible_plugins

ROLE_STEPS = {"jetson_env": "env", "engine_build": "build"}
TASK_TAGS = [[], ["always"], ["never"], ["build"], ["build", "env"], ["build", "collect"],
             ["always", "deploy"], ["never", "build"]]
RUN_TAGS = [["all"], ["env"], ["build"], ["collect"], ["facts"], ["tagged"], ["untagged"],
            ["env", "collect"], ["never"], ["always"]]
SKIP_TAGS = [[], ["env"], ["collect"], ["build"], ["all"], ["always"], ["tagged"],
             ["untagged"], ["all", "always"]]


def ansible_runs(task_tags, run_tags, skip_tags):
    ansible_plugins()  # Task.load resolves the action, as ansible-playbook does
    task = Task.load({"name": "t", "ansible.builtin.debug": {}, "tags": task_tags},
                     loader=DataLoader())
    return task.evaluate_tags(run_tags, skip_tags, {})


@pytest.mark.parametrize("task_tags", TASK_TAGS, ids=str)
def test_the_controller_reads_tags_as_ansible_does(task_tags):
    for run_tags, skip_tags in itertools.product(RUN_TAGS, SKIP_TAGS):
        assert tags.selected(task_tags, run_tags, skip_tags) == ansible_runs(
            task_tags, run_tags, skip_tags), (task_tags, run_tags, skip_tags)


def test_the_device_steps_are_tagged_and_gated_as_the_controller_says():
    (round_block,) = yaml.safe_load((REPO / "playbooks/tasks/device_round.yml").read_text())
    found = {}
    for task in round_block["block"]:
        role = task["ansible.builtin.include_role"]["name"]
        step = ROLE_STEPS[role]
        found[step] = tuple(task["tags"])
        # They inherit always from the rounds: the plan's steps decide (controller/tags.py).
        assert task["when"].startswith("engine_plan_result.steps.{}".format(step)), task
    # The collect step is the fetch and filing of engine_build's last task, switched there.
    (finish,) = [task for task in yaml.safe_load(
        (REPO / "roles/engine_build/tasks/main.yml").read_text()) if "engine_round_finish" in task]
    assert finish["engine_round_finish"]["collect"] == "{{ engine_plan_result.steps.collect }}"
    found["collect"] = tags.DEVICE_STEPS["collect"]
    assert found == tags.DEVICE_STEPS
    assert set(tags.DEVICE_STEPS["collect"]) >= set(found["build"])  # no collect without build


@pytest.mark.parametrize(("run_tags", "skip_tags", "steps"), [
    (["all"], [], {"env", "build", "collect"}),
    (None, None, {"env", "build", "collect"}),
    (["build"], [], {"env", "build", "collect"}),
    (["env"], [], {"env"}),
    (["all"], ["collect"], {"env", "build"}),
    (["all"], ["env"], {"build", "collect"}),
    (["facts"], [], set()),
    (["preflight"], [], set()),
    (["all"], ["build"], set()),
])
def test_which_device_steps_a_run_selects(run_tags, skip_tags, steps):
    chosen = tags.device_steps(run_tags, skip_tags)
    assert {step for step, runs in chosen.items() if runs} == steps


def frame_tasks(path):
    """(name, tags) of a playbook's tasks, with the tags of its imports."""
    plays = yaml.safe_load((REPO / path).read_text())
    found = []
    pending = [task for play in plays for task in play.get("tasks", [])]
    while pending:
        task = pending.pop(0)
        pending = list(task.get("block") or []) + list(task.get("always") or []) + pending
        found.append((task["name"], task.get("tags") or []))
    return found


@pytest.mark.parametrize("path", ["playbooks/build_engines.yml",
                                  "playbooks/deploy_engines.yml"])
def test_the_safety_steps_are_always_and_cannot_be_skipped_by_name(path):
    """The preflight (version gate, inputs, store lock), the facts and, for the build, the plan
    and the report run under any --tags, and no --skip-tags of a step's name skips them."""
    steps = dict(frame_tasks(path))
    safety = [name for name in steps if name.startswith(("Validate the catalog", "Detect"))]
    if "build" in path:
        safety += [name for name in steps if name.startswith(("Plan who", "Summarize"))]
    assert len(safety) == (4 if "build" in path else 2)
    for name in safety:
        assert steps[name] == ["always"], name
        for step in ("preflight", "facts", "plan", "report", "env", "build", "collect",
                     "deploy"):
            assert tags.selected(steps[name], ["env"], [step])


def test_a_run_without_the_build_step_reports_its_plan_not_failures(tmp_path):
    entry = {"model": "m", "build_key": "k" * 64, "variant": "fp16-ws512", "engine": "TRT_m.bin",
             "cached": False, "on_device": False, "rank": 0, "refused": None,
             "store_problem": None, "engine_path": "uff", "export_key": None,
             "onnx_precision": None}
    plan = {"pending": 1, "hosts": {"nano-1": {"platform_id": "p", "scope": "platform",
                                               "models": {"m": entry}, "stale_work": []}},
            "steps": tags.device_steps(["env"], [])}
    rows, _, _ = report.run_report(plan, {"nano-1": {}}, ["nano-1"], {"nano-1"}, "",
                                   check_mode=False)
    assert [(row["status"], row["detail"]) for row in rows] == [("would build", "")]
    plan["steps"] = tags.device_steps(["all"], [])
    rows, _, _ = report.run_report(plan, {"nano-1": {}}, ["nano-1"], {"nano-1"}, "",
                                   check_mode=False)
    assert rows[0]["status"] == "failed"  # the build step ran and nothing came of it


def test_the_readme_table_gives_each_device_step_its_tags():
    text = (REPO / "README.md").read_text()
    table = text[text.index("### Steps and tags"):]
    table = table[:table.index("\n\n", table.index("| step | tag |"))]
    for step, step_tags in tags.DEVICE_STEPS.items():
        row = next(line for line in table.splitlines() if line.startswith("| " + step))
        cell = row.split("|")[2]
        assert sorted(cell.replace("`", "").replace(",", " ").split()) == sorted(step_tags), row
