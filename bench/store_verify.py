"""What verifying the store's engines costs in a plan (controller/store.py), printed as figures.

A store with the entries a fleet of N devices needs (platform scope: one per build key; device
scope: one per device and model), engines of a realistic size (an SSD MobileNet engine is
~20 MB on a Nano), then the plan's lookups timed three ways: with the stat shortcut (size,
mtime and inode recorded when the engine was last hashed), with a full sha256 of every engine,
and the first lookups after a rebuilt index (no stat recorded yet: every engine hashed once).

    python3 bench/store_verify.py [--devices 32] [--models 2] [--engine-mib 20]
"""

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller.store import INDEX_NAME, EngineStore  # noqa: E402
from tests.unit.store_helpers import staged  # noqa: E402

PLATFORMS = ("jetson-nano_l4t32.7.1_trt8.2.1", "jetson-tx2_l4t32.7.1_trt8.2.1",
             "jetson-agx-xavier_l4t35.4.1_trt8.5.2")


def fill(root, keys, engine_bytes):
    store = EngineStore(root)
    for number, (platform_id, model, key) in enumerate(keys):
        staging = Path(root) / ".bench-staging" / str(number)
        payload = b"SIMULATED" + key.encode() * (engine_bytes // 64)
        staged(staging, model, platform_id, key, {"precision": "fp16", "workspace_mib": 256 +
                                                  number, "max_batch": 1, "dla_core": None},
               payload=payload)
        store.file_engine(staging, platform_id=platform_id, model=model,
                          variant="fp16-ws{}".format(256 + number), build_key=key,
                          built_on="bench", max_bytes=engine_bytes * 2)


def timed_lookups(root, keys, full):
    store = EngineStore(root)
    started = time.perf_counter()
    for _, _, key in keys:
        entry = store.lookup(key)
        assert store.verify(entry, full=full) is None
    store.save_verified_stats()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--engine-mib", type=int, default=20)
    args = parser.parse_args()
    figures = {}
    for scope, count in (("platform", len(PLATFORMS) * args.models),
                         ("device", args.devices * args.models)):
        keys = [(PLATFORMS[i % len(PLATFORMS)], "m{}".format(i % args.models),
                 hashlib.sha256("{}-{}".format(scope, i).encode()).hexdigest())
                for i in range(count)]
        with tempfile.TemporaryDirectory() as root:
            fill(root, keys, args.engine_mib << 20)
            shortcut = timed_lookups(root, keys, full=False)
            full = timed_lookups(root, keys, full=True)
            (Path(root) / INDEX_NAME).unlink()
            rebuilt = timed_lookups(root, keys, full=False)
            again = timed_lookups(root, keys, full=False)
        figures[scope] = {"entries": count, "stat_shortcut_s": round(shortcut, 4),
                          "full_sha256_s": round(full, 3),
                          "after_index_rebuild_s": round(rebuilt, 3),
                          "next_run_s": round(again, 4)}
        print("{} scope, {} devices x {} models: {} entries of {} MiB; lookups+verify: stat "
              "shortcut {:.4f} s, full sha256 {:.3f} s, first run after an index rebuild "
              "{:.3f} s, the run after {:.4f} s".format(
                  scope, args.devices, args.models, count, args.engine_mib, shortcut, full,
                  rebuilt, again))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
