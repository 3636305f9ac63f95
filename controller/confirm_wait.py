"""A platform's confirmation within the first round, at each device's own pace.

In platform scope a second device of the platform verifies the engine the first one built
before the store shares it (controller/plan.py confirmation_due). That second device readies
itself in round 0 (the environment and the builder, ``prepare``) and, without this, verifies in
round 1, which starts when the slowest build of the whole fleet has ended. Instead its round-0
finish step waits for the engine it should verify: as soon as its builder has filed it, the
second device verifies it, while other devices still build.

The wait is on the store alone. Each device's finish step signs when it begins, and again
once its round's own builds are filed (or failed): EngineStore.sign_round. An engine that
never comes ends the wait at once: its build failed or the store refused it (the builder
signed the end), or the builder left the run in an earlier step of the round, its push or its
environment, so its finish step did not begin (no start sign within START_GRACE_S; Ansible's
ansible_play_hosts cannot tell: a host that failed in a block with a rescue stays in it until
the rescue ran, which is after this step). The builder's round clock bounds the rest. Round 1
then does what it always did: the next device builds, or confirms. A confirmation made here
leaves round 1 nothing to do for that model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .plan import confirmation_due
from .store import ROUND_ENDED, ROUND_STARTED, StoreEntry

# Beyond the builder's round clock (its wait_s), the time its verifies, listing, fetch and
# filing may take before the waiting device gives up (round 1 confirms then).
FILING_SLACK_S = 300
# The round's finish steps are queued at once (awaited: forks enough for all), so a builder
# whose step has not begun this long after the waiting device's wait began never will.
START_GRACE_S = 30
POLL_S = 0.5


def awaited(works: dict[str, dict[str, Any]], plan_hosts: dict[str, dict[str, Any]], *,
            forks: int) -> dict[str, list[dict[str, Any]]]:
    """{host: [{model, build_key, builder, wait_s}]}: for each host of round 0 that readies
    itself for round 1 (``prepare``), the engines to wait for: the build key's first device
    (rank 0) and how long its round may take. ``works``: the round's detailed work per host
    (controller/device_work.py round_work).

    None when the run's ``forks`` cannot run every finish step of the round at once: Ansible
    queues a host's task until a worker is free, and a waiting step could hold the worker the
    first device's step needs (round 1 confirms then, as it always did)."""
    if forks < len(works):
        return {}
    first = {entry["build_key"]: host for host, host_plan in plan_hosts.items()
             for entry in host_plan["models"].values()
             if entry["rank"] == 0 and not entry["refused"]}
    waits: dict[str, list[dict[str, Any]]] = {}
    for host, work in works.items():
        for model in work.get("prepare") or []:
            key = plan_hosts[host]["models"][model]["build_key"]
            builder = first.get(key)
            if builder is None or builder == host:
                continue
            # A first device without work this round files nothing: what the store holds now
            # is all there will be.
            wait_s = int(works[builder]["wait_s"]) + FILING_SLACK_S if builder in works else 0
            waits.setdefault(host, []).append({"model": model, "build_key": key,
                                               "builder": builder, "wait_s": wait_s})
    return waits


# How each wait ended (the finish step's ``confirm_waits``, model -> one of these).
FILED, NOT_DUE, LEFT, SIGNED, OUT_OF_TIME = (
    "filed: confirmed in this round", "in the store, not for this device to confirm",
    "its first device left the run", "its first device's round ended without it",
    "its first device's round clock ran out: round 1 confirms it")


def wait_for_engines(awaits: list[dict[str, Any]], host: str, *,
                     lookup: Callable[[str], StoreEntry | None],
                     signed: Callable[[str, str], bool],
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """{model: how its wait ended} for each of ``awaits``, once each is decided: its engine is
    there (FILED: due for ``host``'s confirmation, which it makes now; or NOT_DUE), its first
    device left the run (LEFT: its finish step did not begin), signed the end of its round
    without it (SIGNED), or its wait ran out (OUT_OF_TIME). ``lookup(build_key)``: the store's
    entry now; ``signed(builder, ROUND_STARTED or ROUND_ENDED)``: the builder's sign."""
    pending = {item["model"]: item for item in awaits}
    decided: dict[str, str] = {}
    began = clock()
    while pending:
        for model, item in sorted(pending.items()):
            waited = clock() - began
            # The signs first: a builder files its engines before it signs the end.
            ended = signed(item["builder"], ROUND_ENDED)
            left = waited >= START_GRACE_S and not signed(item["builder"], ROUND_STARTED)
            found = lookup(item["build_key"])
            if found is not None:
                decided[model] = FILED if confirmation_due(found, host) else NOT_DUE
            elif ended or left or waited >= item["wait_s"]:
                decided[model] = SIGNED if ended else LEFT if left else OUT_OF_TIME
            else:
                continue
            del pending[model]
        if pending:
            sleep(POLL_S)
    return decided
