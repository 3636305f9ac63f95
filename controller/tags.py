"""The playbooks' tags (README, "Steps and tags"), as far as the controller must know them.

The preflight (with the version gate), the facts, the plan and the report carry ``always``:
every later step reads their results, the preflight is the run's safety and the report ends
the run (summary, exit code, the store's run lock). The device steps of build_engines.yml
carry the tags below (playbooks/tasks/device_round.yml; tests/unit/test_tags.py keeps the two
in step). They sit in the always-tagged rounds, whose tag their tasks inherit, so Ansible
alone would run them under any --tags: the plan says which of them the run's tags select
(``steps``, by Ansible's own rule) and the rounds run only those. A run whose tags select none
of them ends with the plan, as --check does.
"""

from __future__ import annotations

from collections.abc import Iterable

DEVICE_STEPS = {"env": ("build", "env"), "build": ("build",), "collect": ("build", "collect")}


def selected(task_tags: Iterable[str], run_tags: Iterable[str] | None,
             skip_tags: Iterable[str] | None) -> bool:
    """Whether a task tagged ``task_tags`` runs under --tags ``run_tags`` and --skip-tags
    ``skip_tags``: Ansible's rule (Taggable.evaluate_tags, ansible-core 2.16)."""
    tags = set(task_tags) or {"untagged"}
    only, skip = set(run_tags or ()), set(skip_tags or ())
    if only and "always" not in tags and not (
            ("all" in only and "never" not in tags) or not tags.isdisjoint(only)
            or ("tagged" in only and tags != {"untagged"} and "never" not in tags)):
        return False
    if "all" in skip:
        return "always" in tags and "always" not in skip
    return tags.isdisjoint(skip) and not ("tagged" in skip and tags != {"untagged"})


def device_steps(run_tags: Iterable[str] | None, skip_tags: Iterable[str] | None
                 ) -> dict[str, bool]:
    """{step: whether the run's tags let it run} of the device steps of build_engines.yml."""
    return {step: selected(tags, run_tags, skip_tags) for step, tags in DEVICE_STEPS.items()}
