"""A platform's confirmation within the first round, at each device's own pace.

In platform scope a second device of the platform verifies the engine the first one built
before the store shares it (controller/plan.py confirmation_due). That second device readies
itself in round 0 (the environment and the builder, ``prepare``) and, without this, verifies in
round 1, which starts when the slowest build of the whole fleet has ended. Instead its round-0
finish step waits for the engine it should verify: as soon as its builder has filed it, the
second device verifies it, while other devices still build.

The wait is on the store alone: the builder's finish step files its engines, then signs that
its round's builds ended (EngineStore.sign_round_end). An engine that never comes (its build
failed, the store refused it, the builder went silent) ends the wait at the sign, or at the
builder's round clock; round 1 then does what it always did: the next device builds, or
confirms. A confirmation made here leaves round 1 nothing to do for that model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .plan import confirmation_due
from .store import StoreEntry

# Beyond the builder's round clock (its wait_s), the time its verifies, listing, fetch and
# filing may take before the waiting device gives up (round 1 confirms then).
FILING_SLACK_S = 300
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


def still_coming(awaits: list[dict[str, Any]], play_hosts: list[str]
                 ) -> list[dict[str, Any]]:
    """The waits, those whose first device left the run marked (``play_hosts``: Ansible's
    ansible_play_hosts when this device's finish step started). One that failed an earlier
    step of the round (its push, its environment) never reaches its finish step, files
    nothing and never signs: what the store holds now is all there will be."""
    return [dict(item, wait_s=0, left=True) if item["builder"] not in play_hosts else item
            for item in awaits]


def wait_for_engines(awaits: list[dict[str, Any]], host: str, *,
                     lookup: Callable[[str], StoreEntry | None],
                     ended: Callable[[str], bool],
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """{model: how its wait ended} for each of ``awaits``, once each is decided: its engine is
    there (FILED: due for ``host``'s confirmation, which it makes now; or NOT_DUE), its first
    device left the run (LEFT), signed the end of its round without it (SIGNED), or its wait
    ran out (OUT_OF_TIME). ``lookup(build_key)``: the store's entry now; ``ended(builder)``:
    the builder's sign."""
    pending = {item["model"]: item for item in awaits}
    decided: dict[str, str] = {}
    started = clock()
    while pending:
        for model, item in sorted(pending.items()):
            # The sign first: a builder files its engines before it signs.
            signed = ended(item["builder"])
            over = clock() - started >= item["wait_s"]
            found = lookup(item["build_key"])
            if found is not None:
                decided[model] = FILED if confirmation_due(found, host) else NOT_DUE
            elif item.get("left"):
                decided[model] = LEFT
            elif signed or over:
                decided[model] = SIGNED if signed else OUT_OF_TIME
            else:
                continue
            del pending[model]
        if pending:
            sleep(POLL_S)
    return decided
