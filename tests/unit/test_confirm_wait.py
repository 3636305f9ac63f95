"""A platform's confirmation within round 0 (controller/confirm_wait.py): who waits for which
engine, and when the wait ends; the builders' signs in the store."""

from pathlib import Path

from controller.confirm_wait import (
    FILED,
    FILING_SLACK_S,
    LEFT,
    NOT_DUE,
    OUT_OF_TIME,
    SIGNED,
    START_GRACE_S,
    awaited,
    wait_for_engines,
)
from controller.store import ROUND_ENDED, ROUND_STARTED, EngineStore, StoreEntry

KEY_A, KEY_B = "a" * 64, "b" * 64


def plan_entry(key, rank, refused=None):
    return {"build_key": key, "rank": rank, "refused": refused}


PLAN_HOSTS = {
    "nano-1": {"models": {"m_a": plan_entry(KEY_A, 0), "m_b": plan_entry(KEY_B, 1)}},
    "nano-2": {"models": {"m_a": plan_entry(KEY_A, 1), "m_b": plan_entry(KEY_B, 0)}},
    "nano-3": {"models": {"m_a": plan_entry(KEY_A, 2)}},
}


def test_each_readied_device_waits_for_its_build_keys_first_device():
    works = {"nano-1": {"prepare": ["m_b"], "wait_s": 100},
             "nano-2": {"prepare": ["m_a"], "wait_s": 40},
             "nano-3": {"prepare": []}}
    assert awaited(works, PLAN_HOSTS, forks=3) == {
        "nano-1": [{"model": "m_b", "build_key": KEY_B, "builder": "nano-2",
                    "wait_s": 40 + FILING_SLACK_S}],
        "nano-2": [{"model": "m_a", "build_key": KEY_A, "builder": "nano-1",
                    "wait_s": 100 + FILING_SLACK_S}]}
    # Fewer forks than devices in the round: a waiting step could hold the worker the first
    # device's step needs, so nobody waits (round 1 confirms).
    assert awaited(works, PLAN_HOSTS, forks=2) == {}


def test_a_first_device_without_work_this_round_is_not_waited_for():
    """The store may hold its engine already (a confirmation the plan found due): what it
    holds when the wait starts is all there will be."""
    works = {"nano-2": {"prepare": ["m_a"], "wait_s": 0}}
    (wait,) = awaited(works, PLAN_HOSTS, forks=128)["nano-2"]
    assert wait["builder"] == "nano-1" and wait["wait_s"] == 0


def stored(key, built_on, confirmed_by=()):
    return StoreEntry("p", "m", "v", key, Path("/store/p/m/v"), "TRT_m.bin", "e" * 64, 1, {},
                      built_on=built_on, confirmed_by=tuple(confirmed_by))


class World:
    """The store and the builders' signs as seen by the waiting device, changing with time.
    Every builder's finish step has begun unless it is in ``never_began``."""

    def __init__(self, events, never_began=()):
        self.now, self.events = 0.0, events  # events: [(at, build_key or builder, value)]
        self.entries, self.ended, self.looked = {}, set(), 0
        self.never_began = set(never_began)

    def sleep(self, seconds):
        self.now += seconds
        for at, what, value in self.events:
            if at <= self.now and value:
                self.entries[what] = value
            elif at <= self.now:
                self.ended.add(what)

    def lookup(self, key):
        self.looked += 1
        return self.entries.get(key)

    def signed(self, builder, what):
        if what == ROUND_STARTED:
            return builder not in self.never_began
        assert what == ROUND_ENDED
        return builder in self.ended

    def wait(self, awaits, host="nano-2"):
        return wait_for_engines(awaits, host, lookup=self.lookup, signed=self.signed,
                                clock=lambda: self.now, sleep=self.sleep)


AWAIT_A = {"model": "m_a", "build_key": KEY_A, "builder": "nano-1", "wait_s": 600}
AWAIT_B = {"model": "m_b", "build_key": KEY_B, "builder": "nano-3", "wait_s": 600}


def test_the_engine_is_confirmed_as_soon_as_it_is_filed():
    world = World([(12.0, KEY_A, stored(KEY_A, "nano-1")), (12.0, "nano-1", None)])
    assert world.wait([AWAIT_A]) == {"m_a": FILED}
    assert world.now == 12.0


def test_a_builder_that_signed_without_the_engine_ends_the_wait_with_nothing():
    world = World([(30.0, "nano-1", None)])
    assert world.wait([AWAIT_A]) == {"m_a": SIGNED}
    assert world.now == 30.0


def test_the_wait_ends_at_the_builders_clock_without_a_sign():
    world = World([])
    assert world.wait([dict(AWAIT_A, wait_s=20)]) == {"m_a": OUT_OF_TIME}
    assert world.now == 20.0


def test_an_engine_no_longer_due_is_left_out():
    """Built here, or already confirmed by a device of the platform: nothing to confirm."""
    world = World([(1.0, KEY_A, stored(KEY_A, "nano-1", ["nano-3"]))])
    assert world.wait([AWAIT_A]) == {"m_a": NOT_DUE}
    world = World([(1.0, KEY_A, stored(KEY_A, "nano-2"))])
    assert world.wait([AWAIT_A]) == {"m_a": NOT_DUE}


def test_a_first_device_whose_finish_step_never_began_left_the_run():
    """It failed its push or its environment (it is still in ansible_play_hosts until its
    rescue ran, after this step): no sign will come."""
    world = World([], never_began={"nano-1"})
    assert world.wait([AWAIT_A]) == {"m_a": LEFT}
    assert world.now == START_GRACE_S
    # What it filed in an earlier run is still confirmed at once.
    world = World([(0.0, KEY_A, stored(KEY_A, "nano-1"))], never_began={"nano-1"})
    world.sleep(0)
    assert world.wait([AWAIT_A]) == {"m_a": FILED} and world.now == 0.0


def test_each_engine_is_decided_on_its_own():
    world = World([(5.0, "nano-3", None), (9.0, KEY_A, stored(KEY_A, "nano-1"))])
    assert world.wait([AWAIT_A, AWAIT_B]) == {"m_a": FILED, "m_b": SIGNED}
    assert world.now == 9.0


def test_a_builder_signs_its_round_and_a_new_round_clears_the_signs(tmp_path):
    store = EngineStore(tmp_path / "store")
    store.sign_round("nano-1", ROUND_STARTED)
    store.sign_round("nano-1", ROUND_ENDED)
    assert store.round_sign("nano-1", ROUND_STARTED).is_file()
    assert store.round_sign("nano-1", ROUND_ENDED).is_file()
    assert not store.round_sign("nano-2", ROUND_STARTED).exists()
    store.clear_round_signs()
    assert not store.round_sign("nano-1", ROUND_ENDED).exists()
    assert not (tmp_path / "store" / ".staging").exists()  # nothing staged: no area left
    store.staging_dir("nano-2").mkdir(parents=True)
    store.sign_round("nano-1", ROUND_ENDED)
    store.clear_round_signs()
    assert store.staging_dir("nano-2").is_dir()  # a host's staging area is not a sign
