"""Store entries made by hand, as the builder writes them (for the store and plan tests)."""

import hashlib
import json
from pathlib import Path

from controller.store import EngineStore


def staged(directory, model, platform_id, build_key, options=None, *, payload=None):
    """A fetched engine + manifest in ``directory`` (as the round's fetch leaves them)."""
    options = options or {"precision": "fp16", "workspace_mib": 512, "max_batch": 1,
                          "dla_core": None}
    payload = payload if payload is not None else b"SIMULATED engine " + build_key.encode()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    engine_file = "TRT_{}.bin".format(model)
    (directory / engine_file).write_bytes(payload)
    manifest = dict(options, model=model, platform_id=platform_id, engine_file=engine_file,
                    engine_sha256=hashlib.sha256(payload).hexdigest(),
                    engine_size=len(payload), build_key=build_key,
                    verify={"ok": True, "fps": 20.0, "median_ms": 50.0},
                    platform={"module": "jetson-nano", "l4t": "32.7.1"})
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def file_entry(store_dir, host_plan, model, host="nano-1", signing_key=None):
    """File the engine of ``model`` planned in ``host_plan`` into the store (signed with
    ``signing_key`` when given); its engine path."""
    entry = host_plan["models"][model]
    store = EngineStore(store_dir, signing_key=signing_key)
    staging = store.staging_dir(host) / model
    staged(staging, model, host_plan["platform_id"], entry["build_key"], host_plan["options"])
    result = store.file_engine(staging, platform_id=host_plan["platform_id"], model=model,
                               variant=entry["variant"], build_key=entry["build_key"],
                               built_on=host, max_bytes=1 << 20)
    return Path(result["path"]) / "TRT_{}.bin".format(model)
