"""Bringing a device's engines home: what may be fetched, and filing what was fetched.

The device is not trusted: its file listing is checked (plain files, bounded size) before a
byte is fetched, every fetched file again after, and the store checks the manifest against
the plan (controller/store.py). The host's staging area is removed on every path.
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
from pathlib import Path
from typing import Any

from . import trust
from .device_work import model_work_dir
from .store import (
    MANIFEST_NAME,
    TIMING_CACHE_MAX_BYTES,
    TIMING_CACHE_STAGED,
    EngineStore,
    StoreError,
)


def limit_of(model: str, catalog: dict[str, Any], default_bytes: int) -> int:
    """The largest file accepted for ``model``: its catalog max_engine_mib, else the default."""
    mib = (catalog.get(model) or {}).get("max_engine_mib")
    return mib * 2**20 if mib else default_bytes


def fetchable(files: list[dict[str, Any]], models: list[str], host_plan: dict[str, Any],
              limits: dict[str, int], host: str, *, root_dir: str, staging: Path
              ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """([{"model", "name", "src", "dest"}], {model: why refused}) from the device's listing
    (ansible.builtin.find over the models' work dirs, links not followed): each model's engine
    and manifest, found in its own work dir, fetched into its directory of ``staging``.
    ``limits``: model -> the largest file accepted, in bytes."""
    by_dir: dict[str, dict[str, dict[str, Any]]] = {}
    for info in files:
        path = str(info.get("path"))
        by_dir.setdefault(posixpath.dirname(path), {})[posixpath.basename(path)] = info
    allowed: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    for model in models:
        max_bytes = limits[model]
        wanted = {host_plan["models"][model]["engine"], MANIFEST_NAME}
        found = by_dir.get(model_work_dir(root_dir, model), {})
        for name in sorted(wanted):
            if name not in found:
                refused[model] = "{} is missing in its work directory on {}".format(name, host)
            elif found[name].get("islnk") or not found[name].get("isreg"):
                refused[model] = "{} on {} is not a regular file (a link?): refused".format(
                    name, host)
            elif int(found[name].get("size") or 0) > max_bytes:
                refused[model] = ("{} on {} has {} bytes, above the limit of {} bytes "
                                  "(engine_fetch_max_mib, or the model's max_engine_mib in "
                                  "the catalog): refused".format(name, host,
                                                                 found[name].get("size"),
                                                                 max_bytes))
        if model not in refused:
            dest = str(trust.confined(staging, trust.component(
                model, "model", "the plan", trust.MODEL_NAME))) + "/"
            allowed += [{"model": model, "name": name, "src": found[name]["path"],
                         "dest": dest} for name in sorted(wanted)]
    return allowed, refused


def file_host_engines(store_dir: str, host: str, models: list[str], host_plan: dict[str, Any],
                      *, limits: dict[str, int], check_mode: bool,
                      signing_key: str | None = None
                      ) -> tuple[dict[str, str], dict[str, str]]:
    """({model: store path}, {model: why refused}); the staging area is gone afterwards.
    Each filed engine's statement is signed with ``signing_key`` (engine_signing_key)."""
    store = EngineStore(store_dir, signing_key=signing_key)
    staging = store.staging_dir(host)
    filed: dict[str, str] = {}
    refused: dict[str, str] = {}
    try:
        for model in models:
            trust.component(model, "model", "the plan", trust.MODEL_NAME)
            entry = host_plan["models"][model]
            if check_mode:
                continue
            try:
                result = store.file_engine(
                    trust.confined(staging, model), platform_id=host_plan["platform_id"],
                    model=model, variant=entry["variant"], build_key=entry["build_key"],
                    built_on=host, max_bytes=limits[model])
            except StoreError as error:
                refused[model] = str(error)
                continue
            filed[model] = result["path"]
    finally:
        shutil.rmtree(str(staging), ignore_errors=True)
        with contextlib.suppress(OSError):  # the last host out removes .staging itself
            staging.parent.rmdir()
    return filed, refused


def timing_cache_fetch(stat: dict[str, Any] | None, device_file: str | None, host: str,
                       staging: Path) -> tuple[dict[str, str] | None, str | None]:
    """({"src", "dest"}: the fetch of the device's grown timing cache into ``staging``, or
    None; why it is refused, or None).

    ``stat``: what the device listed of ``device_file`` (links not followed). No file is no
    refusal (the builds failed before TensorRT timed anything)."""
    if not device_file or not stat or not stat.get("exists"):
        return None, None
    what = "the timing cache {} on {}".format(device_file, host)
    if stat.get("islnk") or not stat.get("isreg"):
        return None, "{} is not a regular file (a link?): not fetched".format(what)
    size = int(stat.get("size") or 0)
    if size > TIMING_CACHE_MAX_BYTES:
        return None, "{} has {} bytes, above the limit of {}: not fetched".format(
            what, size, TIMING_CACHE_MAX_BYTES)
    if size == 0:
        return None, "{} is empty: not fetched".format(what)
    return {"src": device_file, "dest": str(trust.confined(staging, *TIMING_CACHE_STAGED))}, None


def file_timing_cache(store_dir: str, host: str, platform_id: str, pushed: list[str]
                      ) -> tuple[str | None, str | None]:
    """(store path, None) once the fetched cache replaced the ones pushed, or (None, why not):
    a refused cache is left out of the store and never fails a build."""
    store = EngineStore(store_dir)
    staged = trust.confined(store.staging_dir(host), *TIMING_CACHE_STAGED)
    try:
        filed = store.replace_timing_caches(platform_id, staged, pushed,
                                            source="host {}".format(host))
    except (StoreError, trust.Untrusted) as error:
        return None, "timing cache not stored: {}".format(error)
    return str(filed), None


def file_round(store_dir: str, host: str, host_plan: dict[str, Any],
               round_result: dict[str, Any], *, timing_cache: dict[str, Any],
               catalog: dict[str, Any], max_bytes: int, check_mode: bool,
               signing_key: str | None) -> dict[str, Any]:
    """File what one host's round fetched (``round_result``: the read-back and fetch of
    controller/round_result.py finish_round) into the store, then clear the host's staging
    area. On the controller only: it asks nothing of the device.

    {filed, refused, timing_cache, warnings}: ``filed`` (model -> store path), ``refused``
    (model -> why it was not filed: the read-back's refusals and the store's),
    ``timing_cache`` (the store path of the device's grown cache, or None) and ``warnings``
    (a refused cache never fails a build)."""
    cache_path, cache_warning = None, None
    if round_result.get("timing_cache_fetch") and not check_mode:  # before staging goes
        cache_path, cache_warning = file_timing_cache(
            store_dir, host, host_plan["platform_id"], list(timing_cache.get("pushed") or []))
    models = sorted({item["model"] for item in round_result.get("fetch") or []})
    limits = {m: limit_of(m, catalog, max_bytes) for m in models}
    filed, refused = file_host_engines(store_dir, host, models, host_plan, limits=limits,
                                       check_mode=check_mode, signing_key=signing_key)
    return {"filed": filed, "refused": dict(round_result.get("refused") or {}, **refused),
            "timing_cache": cache_path, "warnings": [cache_warning] if cache_warning else []}
