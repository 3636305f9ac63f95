#!/usr/bin/env python3
"""Fleet benchmark: the tool's cost as the fleet grows, side by side with the manual way.

    python3 bench/run.py [--sizes 1,4,32] [--noop-sizes 128] [--noop-forks 32,128]
                         [--noop-reps 3] [--quick]
                         [--build-seconds nano=28,tx2=18,xavier=7] [--scopes platform,device]
                         [--env-install-sizes 1] [--baseline-sizes 1] [--device-scope-sizes 4]
                         [--deploy-sizes 1,4] [--processes-kind xavier]

For each fleet size, on a fresh simulated fleet of mixed devices (tests/fleet), 2 models:
  per scope (platform, device): build_engines.yml cold, again at once (no-op; in platform
  scope --noop-reps times, each followed by a bare `ansible all -m ping`, the floor of a
  no-op: their medians are compared), and again after one graph changed; in platform scope
  also `--check`, deploy_engines.yml and its up-to-date rerun; then the manual baseline
  (bench/manual_baseline.py) on a fresh fleet. Each --noop-sizes fleet (provisioned, with the
  store and models of the largest --sizes fleet) runs only no-ops: beside a ping at
  ansible.cfg's forks (at most 2 pairs), alone at the other --noop-forks, then `--check`.
  Last, one device of --processes-kind builds every model cold once per
  engine_build_processes setting (per_device, per_model), side by side.
Prints one table and writes bench/results/<timestamp>.{md,json,png}. Run with the project's
venv python (ansible-playbook next to it). Needs root (the simulated fleet).
`--sizes 2 --quick` is the CI version: its figures are printed, never asserted.
"""

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, steps  # noqa: E402  (after sys.path)
from bench.fleet_session import REPO_ROOT, BenchError, Fleet, mixed_hosts  # noqa: E402
from bench.seed import Seed  # noqa: E402
from bench.workload import Workload  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WORK_ROOT = REPO_ROOT / ".cache" / "bench"
DEFAULT_KINDS = "nano,tx2,xavier"
# Emulated build times (the doubles sleep this long inside TensorRT's build call), in the
# proportions of real boards (a Nano the slowest, an AGX Xavier about 4 times faster) and long
# enough that the builds, not the orchestration, are most of a cold run; each build also spends
# ~5 s of real CPU on the shared cores (TensorFlow import, surgery, UFF). A cold run of 32
# devices spends ~20 s around the builds whatever their length: at 28/18/7 s its cold/floor
# was 1.55 (results/20261203-080816), at 32/20/8 s 1.39 to 1.51 over seven runs (README). The
# seed fleet, which only provisions the environment, builds in SEED_BUILD_SECONDS.
DEFAULT_BUILD_SECONDS = "nano=32,tx2=20,xavier=8"
# --quick (CI): the same proportions, short, for a run whose figures are printed, not judged.
QUICK_BUILD_SECONDS = "nano=3,tx2=2,xavier=1"
SEED_BUILD_SECONDS = 1
# The manual baseline performs devices x models builds one device after the other: its cost
# per device is what it measures, so by default it runs at the smallest size only. The device
# scope builds devices x models at once on the 2 shared cores; on one device it is the
# platform scope, so by default it runs from 2 to 4 devices. Larger sizes do not fit the
# 15-minute budget of one run (bench/README.md: how to run them).
BASELINE_MAX_DEFAULT = 1
DEVICE_SCOPE_MIN_DEFAULT, DEVICE_SCOPE_MAX_DEFAULT = 2, 4
# A first deploy installs a small venv on every device and verifies each engine there (a
# Python start and the TensorRT import per device): at 32 simulated devices on 2 shared cores
# that alone is several minutes, so by default deploys run up to 4 devices (--deploy-sizes).
DEPLOY_MAX_DEFAULT = 4
PROCESSES_POLL_S = 1
# No-op and ping pairs per fleet, in platform scope: a single pair of a one-device fleet varied
# by 15 to 20 % here, a ping of 128 devices by up to 20 % (16 to 20 s). A pair of 128 devices
# takes 36 to 40 s: --noop-sizes fleets run at most NOOP_SIZE_REPS (the 15-minute budget).
NOOP_REPS_DEFAULT = 3
NOOP_SIZE_REPS = 2


def parse_build_seconds(text, kinds):
    seconds = {}
    for item in text.split(","):
        kind, sep, value = item.partition("=")
        try:
            seconds[kind] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise SystemExit("error: --build-seconds {!r}: expected KIND=SECONDS,... e.g. {}"
                             .format(text, DEFAULT_BUILD_SECONDS))
    missing = [k for k in kinds if k.split("@")[0] not in seconds and k not in seconds]
    if missing:
        raise SystemExit("error: --build-seconds {!r} gives no time for {}".format(
            text, ", ".join(missing)))
    return seconds


def configured_forks():
    """forks of the repository's ansible.cfg (what a run without --forks uses)."""
    return int(steps.ansible_cfg("forks", fallback=5))


def single_model_floor(record):
    """The longest builder run of a device that built exactly one model in ``record`` (the
    controller's view of that device's builder task: its start to its end), or None when
    no device built exactly one."""
    runs = record.get("builder_runs") or {}
    single = [runs[host] for host, count in record["builds_by_host"].items()
              if count == 1 and host in runs]
    return max(single) if single else None


# The figures compared with a ping, and the median of each over the repetitions.
MEDIAN_FIGURES = ("wall_s", "controller_cpu_s", "controller_cpu_per_device_s",
                  "bytes_to_device_per_device", "bytes_from_device_per_device",
                  "controller_peak_rss_mib", "controller_peak_tree_pss_mib")


def median_record(records):
    """The first of ``records`` with each of MEDIAN_FIGURES the median over all of them, and
    every repetition's figures under "reps" (one run is not enough to judge 25 % on a shared
    machine: bench/README.md)."""
    record = dict(records[0])
    for key in MEDIAN_FIGURES:
        values = [r[key] for r in records if r.get(key) is not None]
        if values:
            record[key] = statistics.median(values)
    record["rc"] = max(r["rc"] for r in records)
    record["reps"] = [{key: r.get(key) for key in MEDIAN_FIGURES + ("rc", "log")}
                      for r in records]
    return record


def _csv(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def _size_set(text, sizes, largest, smallest=1):
    """The sizes named in ``text`` (when it is None: those of ``sizes`` from ``smallest`` up to
    ``largest``, or the smallest)."""
    if text is None:
        return {s for s in sizes if smallest <= s <= largest} or {min(sizes)}
    return {int(s) for s in _csv(text)}


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,32")
    parser.add_argument("--noop-sizes", default=None,
                        help="fleet sizes that run only the no-op, ping and --check (default "
                             "128, none with --quick; '' for none)")
    parser.add_argument("--noop-forks", default="32,128",
                        help="forks tried by the no-op of --noop-sizes (ansible.cfg's is "
                             "always tried, and its no-op compared with a ping)")
    parser.add_argument("--noop-reps", type=int, default=None,
                        help="no-op and ping pairs per fleet in platform scope (alternating; "
                             "their medians are compared; default {}, 1 with --quick)"
                             .format(NOOP_REPS_DEFAULT))
    parser.add_argument("--quick", action="store_true",
                        help="no environment install when a seed from an earlier run is "
                             "cached (CI)")
    parser.add_argument("--kinds", default=DEFAULT_KINDS,
                        help="device kinds dealt round-robin (default %(default)s)")
    parser.add_argument("--build-seconds", default=None,
                        help="emulated build time per kind (default {}; with --quick {})"
                        .format(DEFAULT_BUILD_SECONDS, QUICK_BUILD_SECONDS))
    parser.add_argument("--scopes", default="platform,device")
    parser.add_argument("--env-install-sizes", default=None,
                        help="sizes whose first cold run installs the environment (default: "
                             "the smallest size)")
    parser.add_argument("--baseline-sizes", default=None,
                        help="sizes that also run the manual baseline (default: sizes <= {}; "
                             "it is serial)".format(BASELINE_MAX_DEFAULT))
    parser.add_argument("--device-scope-sizes", default=None,
                        help="sizes that also run the device scope when --scopes has it "
                             "(default: sizes from {} to {})".format(DEVICE_SCOPE_MIN_DEFAULT,
                                                                     DEVICE_SCOPE_MAX_DEFAULT))
    parser.add_argument("--changed-sizes", default=None,
                        help="sizes whose platform scope also rebuilds after one graph changed "
                             "(default: the largest size; the device scope always does)")
    parser.add_argument("--deploy-sizes", default=None,
                        help="sizes that also run deploy_engines.yml (default: sizes <= {})"
                        .format(DEPLOY_MAX_DEFAULT))
    parser.add_argument("--processes-kind", default=None,
                        help="kind of the one-device fleets that build the models cold once "
                             "per engine_build_processes setting, side by side (default: the "
                             "kind with the shortest emulated build; '' for none, none with "
                             "--quick)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


class Benchmark:
    def __init__(self, args):
        self.sizes = sorted(int(s) for s in _csv(args.sizes))
        noop_sizes = args.noop_sizes if args.noop_sizes is not None else (
            "" if args.quick else "128")
        self.noop_sizes = sorted(int(s) for s in _csv(noop_sizes))
        # ansible.cfg's forks is always measured: the targets are judged at it.
        self.noop_forks = sorted({int(f) for f in _csv(args.noop_forks)} | {configured_forks()})
        self.noop_reps = args.noop_reps or (1 if args.quick else NOOP_REPS_DEFAULT)
        self.reuse = None  # (workload, store) of the largest fleet's platform scope
        self.kinds = _csv(args.kinds)
        self.scopes = _csv(args.scopes)
        self.baseline_sizes = _size_set(args.baseline_sizes, self.sizes, BASELINE_MAX_DEFAULT)
        self.device_scope_sizes = _size_set(args.device_scope_sizes, self.sizes,
                                            DEVICE_SCOPE_MAX_DEFAULT, DEVICE_SCOPE_MIN_DEFAULT)
        self.deploy_sizes = _size_set(args.deploy_sizes, self.sizes, DEPLOY_MAX_DEFAULT)
        # One platform-scope changed run shows the incremental rebuild; one per size would
        # cost ~40 s each, which the 15 minutes cannot hold beside builds long enough to judge.
        self.changed_sizes = _size_set(args.changed_sizes, self.sizes, self.sizes[-1],
                                       self.sizes[-1])
        self.build_text = args.build_seconds or (
            QUICK_BUILD_SECONDS if args.quick else DEFAULT_BUILD_SECONDS)
        self.build_seconds = parse_build_seconds(self.build_text, self.kinds)
        self.seed = Seed(WORK_ROOT, self._device_python())
        if args.env_install_sizes is not None:
            self.env_sizes = {int(s) for s in _csv(args.env_install_sizes)}
        elif args.quick and self.seed.has_venv():
            self.env_sizes = set()   # CI: the environment install was measured before
        else:
            self.env_sizes = {self.sizes[0]}
        self.stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.work = WORK_ROOT / self.stamp
        self.logs = args.results_dir / (self.stamp + "-logs")
        self.results_dir = args.results_dir
        self.models = None
        self.profiles = {}
        if args.processes_kind is not None:
            self.processes_kind = args.processes_kind
        else:
            self.processes_kind = "" if args.quick else min(
                self.kinds, key=lambda kind: self._kind_seconds(kind) or 0)

    def _kind_seconds(self, kind):
        return self.build_seconds.get(kind, self.build_seconds.get(kind.split("@")[0]))

    def _fleet(self, name, size, provisioned, build_seconds=None):
        fleet_dir = self.work / "fleet-{}".format(name)
        shared = self.seed.shared_tree() if provisioned else None
        return Fleet(fleet_dir, mixed_hosts(size, self.kinds),
                     self._build_text_for(size, build_seconds), shared)

    def _build_text_for(self, size, seconds_of_all=None):
        """simfleet refuses build times for kinds the fleet does not have."""
        present = {kind.split("@")[0] for kind in self.kinds[:size]}
        return ",".join("{}={:g}".format(
            kind, seconds if seconds_of_all is None else seconds_of_all)
                        for kind, seconds in self.build_seconds.items()
                        if kind.split("@")[0] in present)

    def _start(self, fleet, provisioned):
        fleet.up()
        if provisioned:
            self.seed.mark_provisioned(fleet)
        return fleet

    def _ensure_seed(self, size):
        """Provisioned fleets need the seed venv and a marker for every profile they have."""
        if self.seed.has_venv() and not self.seed.missing_profiles(self._profiles_of(size)):
            return
        probe = self._fleet("seed", len(self.kinds), provisioned=False,
                            build_seconds=SEED_BUILD_SECONDS)
        print("  seeding the provisioned environment (not measured): {}".format(
            probe.hosts_text), flush=True)
        workload = Workload(self.work / "seed-workload").prepare()
        self._start(probe, provisioned=False)
        try:
            record = steps.playbook_step("seed", probe, workload, store_dir=self.work / "seed",
                                         scope="platform", log_dir=self.logs)
            found = self.seed.harvest(probe)
        finally:
            probe.down()
            shutil.rmtree(probe.dir, ignore_errors=True)
        if self.seed.missing_profiles(self._profiles_of(size)) or not self.seed.has_venv():
            raise BenchError("seeding did not provision every device (got {}); see {}".format(
                found, record["log"]))

    def _device_python(self):
        """The Python (X.Y) the devices of --kinds run; the seed venv is shared by all."""
        sys.path.insert(0, str(REPO_ROOT / "tests"))
        from fleet import device_python, profiles  # noqa: PLC0415  (tests/ is not a package path)
        host = "{}.{}".format(*sys.version_info[:2])
        versions = set()
        for _, profile in profiles.plan_hosts(mixed_hosts(len(self.kinds), self.kinds),
                                              self._build_text_for(len(self.kinds))):
            minor = device_python.wanted(profile.release)
            versions.add(minor if device_python.find_build(minor) else host)
        if len(versions) != 1:
            raise BenchError("--kinds {} run different Pythons ({}): the provisioned fleets share "
                             "one venv; choose kinds of one JetPack line".format(
                                 ",".join(self.kinds), ", ".join(sorted(versions))))
        return versions.pop()

    def _profiles_of(self, size):
        if size not in self.profiles:
            self.profiles[size] = self._profiles_now(size)
        return self.profiles[size]

    def _profiles_now(self, size):
        # The profile names (kind@l4t) come from the fleet itself: ask simfleet's profiles.
        sys.path.insert(0, str(REPO_ROOT / "tests"))
        from fleet import profiles  # noqa: PLC0415  (tests/ is not a package path)
        plan = profiles.plan_hosts(mixed_hosts(size, self.kinds), self._build_text_for(size))
        return sorted({profile.name for _, profile in plan})

    def measure_size(self, size):
        profiles_here = self._profiles_of(size)
        kinds_here = {p.split("@")[0] for p in profiles_here}
        entry = {"size": size, "hosts": mixed_hosts(size, self.kinds),
                 "emulated_build_s": max(self._kind_seconds(k) for k in kinds_here),
                 "platforms": len(profiles_here), "models": None, "scopes": {}}
        env_pending = size in self.env_sizes
        for scope in self._scopes_of(size):
            provisioned = not env_pending
            if provisioned:
                self._ensure_seed(size)
            workload = Workload(self.work / "workload-{}-{}".format(size, scope)).prepare()
            self.models = workload.models
            fleet = self._fleet("{}-{}".format(size, scope), size, provisioned)
            store = self.work / "store-{}-{}".format(size, scope)
            self._start(fleet, provisioned)
            try:
                cold = self._step("{}-{}-cold".format(size, scope), fleet, workload, store, scope)
                if not provisioned:
                    self.seed.harvest(fleet)
                    env_pending = False
                if scope == "platform":
                    noop, ping = self._noop_and_ping("{}-platform".format(size), fleet,
                                                     workload, store)
                    more = self._platform_extras(size, fleet, workload, store, ping)
                else:   # the ping is the platform scope's comparison: one no-op here
                    noop = self._step("{}-{}-noop".format(size, scope), fleet, workload, store,
                                      scope, with_timeline=False)
                    more = {}
                changed = None
                if scope == "device" or size in self.changed_sizes:
                    workload.change_graph(workload.models[0])
                    changed = self._step("{}-{}-changed".format(size, scope), fleet,
                                         workload, store, scope)
            finally:
                fleet.down()
                shutil.rmtree(fleet.dir, ignore_errors=True)
            if scope == "platform":
                self.reuse = (workload, store)
            cold["floor_device"] = self._floor_device(cold)
            cold["floor_s"] = single_model_floor(cold)
            entry["scopes"][scope] = dict(more, cold=cold, noop=noop, changed=changed,
                                          env_in_cold=not provisioned)
        entry["models"] = self.models
        entry["naive_builds"] = size * len(self.models)
        entry["distinct_builds"] = entry["platforms"] * len(self.models)
        entry["baseline"] = self._baseline(size) if size in self.baseline_sizes else None
        return entry

    def _platform_extras(self, size, fleet, workload, store, ping):
        """--check, the ping beside the no-op, and (--deploy-sizes) a deploy with its
        up-to-date rerun, after the no-op."""
        name = "{}-platform".format(size)
        extras = {"check": self._step(name + "-check", fleet, workload, store, "platform",
                                      args=["--check"]),
                  "ping": ping}
        if size in self.deploy_sizes:
            for step, label in (("deploy", "-deploy"), ("deploy_again", "-deploy-again")):
                extras[step] = self._step(name + label, fleet, workload, store, "platform",
                                          playbook="deploy_engines.yml")
        return extras

    def _ping(self, label, fleet, args=()):
        print("  {} ...".format(label), end=" ", flush=True)
        record = steps.ping_step(label, fleet, self.logs, args=args)
        print("{:.1f} s, rc {}".format(record["wall_s"], record["rc"]), flush=True)
        return record

    def _noop_and_ping(self, label, fleet, workload, store, *, args=(), reps=None):
        """``reps`` (else --noop-reps) platform-scope no-ops, each next to a bare ping of the
        same fleet: (no-op, ping), each the record of its first run with the median of every
        figure (median_record). The order alternates (no-op, ping, ping, no-op, ...): the
        machine's drift over the pairs, and whatever the step before left running, then hit
        both alike instead of always the first of each pair."""
        noops, pings = [], []
        for rep in range(reps or self.noop_reps):
            suffix = "" if rep == 0 else "-{}".format(rep + 1)
            for kind in (("noop", "ping") if rep % 2 == 0 else ("ping", "noop")):
                if kind == "noop":
                    noops.append(self._step("{}-noop{}".format(label, suffix), fleet, workload,
                                            store, "platform", args=list(args),
                                            with_timeline=False))
                else:
                    pings.append(self._ping("{}-ping{}".format(label, suffix), fleet, args=args))
        return median_record(noops), median_record(pings)

    def measure_noop_size(self, size):
        """A large provisioned fleet on the store of the largest full run: at ansible.cfg's
        forks, whose figures the targets are judged by, up to NOOP_SIZE_REPS no-op and ping
        pairs; at the other --noop-forks one no-op, which is all the choice of forks needs;
        then --check."""
        if self.reuse is None:
            raise BenchError("--noop-sizes needs a --sizes fleet run in platform scope first "
                             "(its store and models are reused)")
        workload, store = self.reuse
        self._ensure_seed(size)
        fleet = self._fleet("{}-noop".format(size), size, provisioned=True)
        self._start(fleet, provisioned=True)
        runs = {}
        try:
            for forks in self.noop_forks:
                label = "{}-platform-f{}".format(size, forks)
                args = ["--forks", str(forks)]
                if forks == configured_forks():
                    noop, ping = self._noop_and_ping(
                        label, fleet, workload, store, args=args,
                        reps=min(self.noop_reps, NOOP_SIZE_REPS))
                    runs[str(forks)] = {"noop": noop, "ping": ping}
                else:
                    runs[str(forks)] = {"noop": self._step(
                        label + "-noop", fleet, workload, store, "platform", args=args,
                        with_timeline=False)}
            check = self._step("{}-platform-check".format(size), fleet, workload, store,
                               "platform", args=["--check"])
        finally:
            fleet.down()
            shutil.rmtree(fleet.dir, ignore_errors=True)
        return {"size": size, "hosts": mixed_hosts(size, self.kinds), "noop_only": True,
                "runs": runs, "check": check}

    def _floor_device(self, record):
        """The device that did the slowest build of the run (its kind's emulated build time is
        the longest among the devices that built), with its busy and waiting times."""
        builders = [host for host, count in record["builds_by_host"].items() if count]
        times = record.get("device_times") or {}
        if not builders or not times:
            return None
        host = max(builders, key=lambda name: (self._kind_seconds(name.rsplit("-", 1)[0]) or 0,
                                               times.get(name, {}).get("busy_s", 0)))
        return dict(times.get(host, {}), host=host)

    def _scopes_of(self, size):
        return [scope for scope in self.scopes
                if scope != "device" or size in self.device_scope_sizes]

    def _step(self, label, fleet, workload, store, scope, **more):
        print("  {} ...".format(label), end=" ", flush=True)
        record = steps.playbook_step(label, fleet, workload, store_dir=store, scope=scope,
                                     log_dir=self.logs, **more)
        print("{:.1f} s, rc {}, {} builds".format(record["wall_s"], record["rc"],
                                                 record["builds"]), flush=True)
        return record

    def _baseline(self, size):
        self._ensure_seed(size)
        workload = Workload(self.work / "workload-{}-baseline".format(size)).prepare()
        fleet = self._fleet("{}-baseline".format(size), size, provisioned=True)
        self._start(fleet, provisioned=True)
        print("  {}-baseline ...".format(size), end=" ", flush=True)
        try:
            record = steps.baseline_step("{}-baseline".format(size), fleet, workload, self.logs)
        finally:
            fleet.down()
            shutil.rmtree(fleet.dir, ignore_errors=True)
        print("{:.1f} s, rc {}, {} builds".format(record["wall_s"], record["rc"],
                                                 record["builds"]), flush=True)
        return record

    def measure_processes(self):
        """One device of ``processes_kind`` builds every model cold, once in one builder
        process (per_device) and once in one process per model (per_model), each on its own
        fresh provisioned fleet and store: what one process per device buys, side by side.
        Both wait for their builds in windows of PROCESSES_POLL_S (engine_build_poll_s; the
        long poll sees a process's end within about a second at any window, the polls of 5 s
        it replaced only at the next poll, which hid a few seconds either way)."""
        kind, seconds = self.processes_kind, self._kind_seconds(self.processes_kind)
        self._ensure_seed(len(self.kinds))
        runs = {}
        for mode in ("per_device", "per_model"):
            workload = Workload(self.work / "workload-processes-{}".format(mode)).prepare()
            fleet = Fleet(self.work / "fleet-processes-{}".format(mode), "{}=1".format(kind),
                          "{}={:g}".format(kind, seconds), self.seed.shared_tree())
            self._start(fleet, provisioned=True)
            try:
                runs[mode] = self._step(
                    "processes-{}".format(mode), fleet, workload,
                    self.work / "store-processes-{}".format(mode), "platform",
                    args=["-e", "engine_build_processes={}".format(mode),
                          "-e", "engine_build_poll_s={}".format(PROCESSES_POLL_S)])
            finally:
                fleet.down()
                shutil.rmtree(fleet.dir, ignore_errors=True)
        return {"kind": kind, "emulated_build_s": seconds, "poll_s": PROCESSES_POLL_S,
                "runs": runs}

    def run(self):
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        meta = {"started": self.stamp, "cpus": os.cpu_count(), "machine": os.uname().machine,
                "build_seconds": self.build_text, "kinds": ",".join(self.kinds),
                "scopes": self.scopes, "sizes": self.sizes, "noop_sizes": self.noop_sizes,
                "noop_forks": self.noop_forks, "cfg_forks": configured_forks()}
        entries = []
        try:
            for size in self.sizes:
                print("fleet of {} ({})".format(size, mixed_hosts(size, self.kinds)), flush=True)
                entries.append(self.measure_size(size))
            for size in self.noop_sizes:
                print("fleet of {}, no-op only ({})".format(size, mixed_hosts(size, self.kinds)),
                      flush=True)
                entries.append(self.measure_noop_size(size))
            if self.processes_kind:
                print("builder processes, one {} device, cold".format(self.processes_kind),
                      flush=True)
                meta["processes"] = self.measure_processes()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        meta["models"] = ",".join(self.models or [])
        meta["total_s"] = round(time.monotonic() - started, 1)
        text = report.write(self.results_dir, self.stamp, meta, entries)
        print()
        print(text)
        print("benchmark took {:.0f} s; results: {}".format(
            meta["total_s"], self.results_dir / (self.stamp + ".{md,json,png}")))
        return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("error: the benchmark starts a simulated fleet, which needs root", file=sys.stderr)
        return 2
    try:
        return Benchmark(args).run()
    except BenchError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
