"""The engine store on the controller: one entry per (platform_id, model, engine options).

    <store>/<platform_id>/<model>/<variant>/TRT_<model>.bin   the engine
    <store>/<platform_id>/<model>/<variant>/manifest.json     what it is (builder/manifest.py)
    <store>/index.json                                        build key -> entry, for reports
    <store>/.quarantine/<when>-<platform_id>-<model>-<variant>/  entries found corrupt, + REASON
    <store>/.staging/<host>/<model>/                          fetched files before filing
    <store>/.timing-caches/<platform_id>/<sha256>.cache        TensorRT timing caches (8.0+)
    <store>/onnx/<model>/...                                  ONNX exports (onnx_exports.py)
    <store>/attempts.json  deployments.json                   what runs tried, what is deployed
    <store>/report.md  report.html                            the reports (report.py)
    <store>/.lock  .run-lock                                  the filing lock, the run lock

The names below (INDEX_NAME ... DOCUMENTS) are the one home of this layout: every module that
reads or writes a part of it imports them.

Every path is built from checked components and confined to the store (controller/trust.py).
Entries are assembled in a temporary directory and renamed into place under an fcntl lock on
``<store>/.lock``, so a reader sees the old entry or the new one. A stored engine counts as
cached only once it is verified against its manifest: the size, mtime and inode recorded in
the index when it was last hashed, and a full sha256 when any of them changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import atomic
from builder.atomic import file_sha256
from builder.trt.adapter import PRECISION_FROM_TYPES
from module_utils.trt_deploy import STATEMENT as STATEMENT_NAME
from module_utils.trt_signature import EXPIRED, MISSING, SignatureProblem

from . import signing, trust
from .lease import LOCK_NAME  # the store lock file's name: see there
from .selection import EngineOptions

# The store's root layout.
INDEX_NAME = "index.json"
STAGING_NAME = ".staging"
# Where a host's returned timing cache is fetched, below its staging area (a model's
# directory there cannot start with '.': trust.MODEL_NAME).
TIMING_CACHE_STAGED = (".timing-cache", "returned.cache")
# Beside the hosts' staging areas (a host name cannot start with '.'): empty files that say
# where each host's round is, for the devices that wait in the same round to confirm what it
# built (controller/confirm_wait.py): ROUND_STARTED when its finish step began, ROUND_ENDED
# once its round's own builds are filed (or failed). Cleared at every round's start.
ROUND_SIGNS_NAME = ".round-signs"
ROUND_STARTED, ROUND_ENDED = "started", "ended"
QUARANTINE_NAME = ".quarantine"
TIMING_CACHES_NAME = ".timing-caches"
ONNX_DIR = "onnx"  # controller/onnx_exports.py
ATTEMPTS_NAME = "attempts.json"  # controller/attempts.py
DEPLOYMENTS_NAME = "deployments.json"  # controller/deployments.py
REPORT_MD, REPORT_HTML = "report.md", "report.html"
DOCUMENTS = (REPORT_MD, REPORT_HTML)  # controller/report.py, rendered by report_html.py
INDEX_FORMAT = 2
MANIFEST_NAME = "manifest.json"
# Temporaries beside what they become (a killed run's are leftovers, removed by the tool).
INDEX_TEMP_PREFIX, NEW_TEMP_PREFIX, OLD_TEMP_PREFIX = ".index-", ".new-", ".old-"
TEMP_PREFIXES = (INDEX_TEMP_PREFIX, NEW_TEMP_PREFIX, OLD_TEMP_PREFIX)
FILE_MODE, DIR_MODE = 0o644, 0o755
REQUIRED_MANIFEST_KEYS = ("model", "platform_id", "build_key", "engine_file", "engine_sha256",
                          "engine_size", "precision", "workspace_mib", "max_batch")
# Manifest fields copied into each index entry (the reports read the index alone).
INDEX_FIELDS = ("build_key", "engine_sha256", "engine_size", "builder_version",
                "tensorrt_version", "precision", "workspace_mib", "max_batch", "dla_core",
                "created_utc", "build_seconds", "graph_sha256", "engine_path", "outputs")
VERIFY_FIELDS = ("ok", "fps", "median_ms", "verified_utc", "problems")
# "python": the device's interpreter that ran the builder (a simulated device without its
# JetPack's Python runs the host's, and the reports then show it).
PLATFORM_FIELDS = ("module", "soc", "compute_capability", "l4t", "jetpack", "python")
# Engines made by the JetPack test doubles start with this (tests/jetpack): the index and
# every report made from it say so.
SIMULATED_MARK = b"SIMULATED"
SPACE_MARGIN_BYTES = 16 << 20
TIMING_CACHE_SUFFIX = ".cache"
# A real cache of an SSD model's tactics is a few MiB at most.
TIMING_CACHE_MAX_BYTES = 64 << 20


class StoreError(Exception):
    """An engine that must not enter the store, or a store that cannot be used; the message
    says what, where and what to do."""


@dataclass(frozen=True)
class StoreEntry:
    platform_id: str
    model: str
    variant: str
    build_key: str
    dir: Path
    engine_file: str
    engine_sha256: str
    engine_size: int
    manifest: dict[str, Any] = field(compare=False, repr=False)
    # The host that built it and the other hosts of its platform that verified it since
    # (a second device's verify makes it a platform's shared entry: controller/plan.py).
    built_on: str | None = field(default=None, compare=False)
    confirmed_by: tuple[str, ...] = field(default=(), compare=False)

    @property
    def engine_path(self) -> Path:
        return self.dir / self.engine_file

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST_NAME

    @property
    def relpath(self) -> str:
        return "{}/{}/{}".format(self.platform_id, self.model, self.variant)


def variant_of(manifest: dict[str, Any]) -> str:
    return EngineOptions(str(manifest["precision"]), int(manifest["workspace_mib"]),
                         int(manifest["max_batch"]), manifest.get("dla_core")).variant_for(
        manifest.get("precision_source") == PRECISION_FROM_TYPES)


def read_manifest(path: Path, source: str = "the store") -> dict[str, Any]:
    """A manifest with the keys the store relies on, its names checked (StoreError if not)."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StoreError("cannot read manifest {}: {}".format(path, error)) from error
    if not isinstance(manifest, dict):
        raise StoreError("manifest {} is not a JSON object".format(path))
    missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    if missing:
        raise StoreError("manifest {} lacks {}".format(path, ", ".join(missing)))
    try:
        trust.component(manifest["platform_id"], "platform_id", source)
        trust.component(manifest["model"], "model", source, trust.MODEL_NAME)
        trust.component(manifest["engine_file"], "engine_file", source)
        trust.sha256_text(manifest["engine_sha256"], "engine_sha256", source)
        trust.component(variant_of(manifest), "engine options", source)
    except (trust.Untrusted, TypeError, ValueError) as error:
        raise StoreError("manifest {}: {}".format(path, error)) from error
    return manifest


def _stat_of(path: Path) -> dict[str, Any]:
    info = os.stat(str(path))
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """``data`` as sorted, indented JSON at ``path``, replaced atomically (a store file)."""
    atomic.write_json(str(path), data, prefix=INDEX_TEMP_PREFIX, mode=FILE_MODE)


def is_simulated(engine_path: Path) -> bool:
    with open(str(engine_path), "rb") as handle:
        return handle.read(len(SIMULATED_MARK)) == SIMULATED_MARK


def no_space_message(where: Path, needed: int) -> str:
    free = shutil.disk_usage(str(where)).free
    return ("the controller's engine store {} has {:.0f} MiB free, about {:.0f} MiB are needed "
            "for this engine: free space on that disk, or set engine_store_dir (group_vars/"
            "all.yml) to a disk with room".format(where, free / 2**20, needed / 2**20 + 1))


class EngineStore:
    def __init__(self, root: Path | str, *, read_only: bool = False,
                 signing_key: Path | str | None = None):
        """``read_only`` (check mode): an unreadable index is rebuilt in memory, not written.
        ``signing_key`` (engine_signing_key): entries filed are signed with it (created on
        first use), and check / repair verify every entry's statement against its keyring."""
        self.root = Path(os.path.abspath(str(root)))
        self.read_only = read_only
        self.signing_key = Path(os.path.abspath(str(signing_key))) if signing_key else None
        self._index: dict[str, Any] | None = None
        self.notes: list[str] = []  # what the store did by itself (repairs), for the run's output
        # rel -> (engine sha256, stat) of engines verify() hashed; saved by save_verified_stats
        self._hashed: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- layout ---------------------------------------------------------------------------
    def entry_dir(self, platform_id: str, model: str, variant: str) -> Path:
        source = "the plan"
        return trust.confined(self.root, trust.component(platform_id, "platform_id", source),
                              trust.component(model, "model", source, trust.MODEL_NAME),
                              trust.component(variant, "variant", source))

    def staging_dir(self, host: str) -> Path:
        return trust.confined(self.root, STAGING_NAME, trust.component(host, "host name",
                                                                       "the inventory"))

    def round_sign(self, host: str, what: str) -> Path:
        """The file that says ``host``'s round reached ``what`` (ROUND_STARTED, ROUND_ENDED)."""
        return trust.confined(self.root, STAGING_NAME, ROUND_SIGNS_NAME, "{}.{}".format(
            trust.component(host, "host name", "the inventory"), what))

    def sign_round(self, host: str, what: str) -> None:
        sign = self.round_sign(host, what)
        sign.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sign.touch()

    def clear_round_signs(self) -> None:
        """A new round: no host's round began or ended yet (also a killed run's signs go)."""
        shutil.rmtree(str(self.root / STAGING_NAME / ROUND_SIGNS_NAME), ignore_errors=True)
        with contextlib.suppress(OSError):  # left when a host staged something
            (self.root / STAGING_NAME).rmdir()

    def _entry_from_manifest(self, directory: Path, manifest: dict[str, Any]) -> StoreEntry:
        return StoreEntry(manifest["platform_id"], manifest["model"], variant_of(manifest),
                          manifest["build_key"], directory, manifest["engine_file"],
                          manifest["engine_sha256"], int(manifest["engine_size"]), manifest)

    def _manifest_dirs(self) -> Iterator[Path]:
        """Every <platform_id>/<model>/<variant>/ holding a manifest.json."""
        if not self.root.is_dir():
            return
        for platform_dir in sorted(self.root.iterdir()):
            if platform_dir.name.startswith(".") or not platform_dir.is_dir():
                continue
            for model_dir in sorted(platform_dir.iterdir()):
                if model_dir.name.startswith(".") or not model_dir.is_dir():
                    continue
                for variant_dir in sorted(model_dir.iterdir()):
                    if (not variant_dir.name.startswith(".") and variant_dir.is_dir()
                            and (variant_dir / MANIFEST_NAME).is_file()):
                        yield variant_dir

    # -- locking --------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock for a read-compare-write of the store (released on close)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(str(self.root / LOCK_NAME), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._index = None  # another process may have changed it
            yield

    # -- index ----------------------------------------------------------------------------
    def index(self, *, repair: bool = True) -> dict[str, Any]:
        """The index; a missing, unreadable or old-format one is rebuilt from the manifests
        (and written back when ``repair`` and the store is not read-only), with a note."""
        if self._index is not None:
            return self._index
        repair = repair and not self.read_only
        path = self.root / INDEX_NAME
        problem = None
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or \
                    not isinstance(index.get("entries"), dict):
                problem = "is not an index of format {}".format(INDEX_FORMAT)
        except FileNotFoundError:
            index, problem = None, None if not self.root.is_dir() else "is missing"
        except (OSError, ValueError) as error:
            index, problem = None, "is unreadable ({})".format(error)
        if index is None or problem:
            if problem and (self._legacy_entries() or self.root.is_dir()):
                index = self._rebuild(repair, "{} {}".format(path, problem))
            else:
                index = {"format": INDEX_FORMAT, "simulated": False, "entries": {}}
        checked: dict[str, Any] = index
        self._index = checked
        return checked

    def _rebuild(self, write: bool, why: str) -> dict[str, Any]:
        if write:
            with self.locked():
                migrated = self.migrate_legacy()
                index = self.build_index(self._previous_hosts())
                self._write_index(index)
            self.notes.append("{}: rebuilt it from the manifests{}".format(
                why, " after moving {} entries of the old layout".format(len(migrated))
                if migrated else ""))
            return index
        return self.build_index({})

    def _previous_hosts(self) -> dict[str, Any]:
        """rel -> (build_key, built_on, confirmed_by) from the current index, when it can be
        read."""
        try:
            old = json.loads((self.root / INDEX_NAME).read_text(encoding="utf-8"))
            entries = old.get("entries") or {}
            return {rel: (e.get("build_key"), e.get("built_on"), e.get("confirmed_by") or [])
                    for rel, e in entries.items() if isinstance(e, dict) and e.get("built_on")}
        except (OSError, ValueError, AttributeError):
            return {}

    def index_entry(self, entry: StoreEntry, built_on: str | None, *, hashed: bool,
                    confirmed_by: list[str] | None = None) -> dict[str, Any]:
        """The index's summary of an entry. ``hashed``: its engine was just checked against
        its manifest, so its stat is recorded (later lookups skip the hash while it holds)."""
        manifest = entry.manifest
        summary = {key: manifest[key] for key in INDEX_FIELDS if key in manifest}
        verify = manifest.get("verify") or {}
        summary["verify"] = {key: verify[key] for key in VERIFY_FIELDS if key in verify}
        platform = manifest.get("platform") or {}
        summary["platform"] = {key: platform[key] for key in PLATFORM_FIELDS if key in platform}
        graph = (manifest.get("spec") or {}).get("graph")
        if graph:
            summary["graph_file"] = os.path.basename(str(graph))
        verification = ((manifest.get("onnx") or {}).get("verification") or {})
        if verification:  # the ONNX path: the export's check against TensorFlow
            summary["onnx_verification"] = {
                "ok": verification.get("ok"),
                "cut_max_abs_error": (verification.get("cut") or {}).get("max_abs_error"),
                "detections": verification.get("detections")}
        summary.update(platform_id=entry.platform_id, model=entry.model, variant=entry.variant,
                       engine="{}/{}".format(entry.relpath, entry.engine_file),
                       simulated=is_simulated(entry.engine_path))
        if hashed:
            summary["stat"] = _stat_of(entry.engine_path)
        if built_on:
            summary["built_on"] = built_on
            if confirmed_by:
                summary["confirmed_by"] = sorted(set(confirmed_by) - {built_on})
        return summary

    def build_index(self, hosts: dict[str, Any]) -> dict[str, Any]:
        """The index from every manifest; hosts: rel -> (build_key, built_on, confirmed_by)
        to keep."""
        entries = {}
        for directory in self._manifest_dirs():
            try:
                entry = self._entry_from_manifest(directory, read_manifest(
                    directory / MANIFEST_NAME))
                if not entry.engine_path.is_file():
                    continue
            except StoreError as error:
                self.notes.append("left out of the index: {}".format(error))
                continue
            key, host, confirmed = hosts.get(entry.relpath, (None, None, []))
            entries[entry.relpath] = self.index_entry(
                entry, host if key == entry.build_key else None, hashed=False,
                confirmed_by=confirmed if key == entry.build_key else None)
        return {"format": INDEX_FORMAT,
                "simulated": any(e["simulated"] for e in entries.values()),
                "entries": entries}

    def _write_index(self, index: dict[str, Any]) -> bool:
        text = json.dumps(index, indent=2, sort_keys=True) + "\n"
        path = self.root / INDEX_NAME
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == text:
                self._index = index
                return False
        atomic.write_text(str(path), text, prefix=INDEX_TEMP_PREFIX, mode=FILE_MODE)
        self._index = index
        return True

    # -- lookups --------------------------------------------------------------------------
    def lookup(self, build_key: str) -> StoreEntry | None:
        """The entry holding ``build_key`` (not yet verified: see ``verify``), or None."""
        for rel, summary in self.index()["entries"].items():
            if summary.get("build_key") != build_key:
                continue
            directory = self.root / rel
            try:
                manifest = read_manifest(directory / MANIFEST_NAME)
            except StoreError:
                return self._entry_from_summary(directory, summary)
            return dataclasses.replace(
                self._entry_from_manifest(directory, manifest),
                built_on=summary.get("built_on"),
                confirmed_by=tuple(summary.get("confirmed_by") or ()))
        return None

    def _entry_from_summary(self, directory: Path, summary: dict[str, Any]) -> StoreEntry:
        """An entry whose manifest went missing or bad: verify() reports it corrupt."""
        return StoreEntry(summary["platform_id"], summary["model"], summary["variant"],
                          summary["build_key"], directory,
                          os.path.basename(summary.get("engine", "")),
                          summary.get("engine_sha256", ""), summary.get("engine_size", 0), {})

    def verify(self, entry: StoreEntry, *, full: bool = False) -> str | None:
        """None when the entry's engine matches its manifest, else why it is corrupt.

        Without ``full``, an engine whose size, mtime and inode are those recorded when it was
        last hashed is not hashed again."""
        if not entry.manifest:
            return "its manifest {} is missing or unreadable".format(entry.manifest_path)
        try:
            current = _stat_of(entry.engine_path)
        except FileNotFoundError:
            return "its engine {} is missing".format(entry.engine_path)
        if current["size"] != entry.engine_size:
            return "its engine {} has {} bytes, the manifest says {}".format(
                entry.engine_path, current["size"], entry.engine_size)
        summary = self.index()["entries"].get(entry.relpath) or {}
        if not full and summary.get("stat") == current and \
                summary.get("engine_sha256") == entry.engine_sha256:
            return None  # hashed before, unchanged since (size, mtime, inode)
        actual = file_sha256(str(entry.engine_path))
        if actual != entry.engine_sha256:
            return "its engine {} has sha256 {}, the manifest says {}".format(
                entry.engine_path, actual, entry.engine_sha256)
        self._hashed[entry.relpath] = (actual, current)
        return None

    def save_verified_stats(self) -> None:
        """Record the stats of engines ``verify`` hashed (the next lookups skip the hash)."""
        if not self._hashed:
            return
        with self.locked():
            index = self.index()
            for rel, (digest, current) in self._hashed.items():
                summary = index["entries"].get(rel)
                if summary and summary.get("engine_sha256") == digest:
                    summary["stat"] = current
            self._write_index(index)
        self._hashed = {}

    # -- changes --------------------------------------------------------------------------
    def quarantine(self, entry: StoreEntry, reason: str) -> Path:
        """Move a corrupt entry out of the way (kept for a look, with the reason)."""
        with self.locked():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            target = trust.confined(self.root, QUARANTINE_NAME, "{}-{}-{}-{}".format(
                stamp, entry.platform_id, entry.model, entry.variant))
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.dir.is_dir():
                os.rename(str(entry.dir), str(target))
            else:
                target.mkdir()
            (target / "REASON.txt").write_text("{}\n{}\n".format(entry.relpath, reason))
            index = self.index(repair=False)
            index["entries"].pop(entry.relpath, None)
            self._write_index(index)
        return target

    def file_engine(self, staged_dir: Path, *, platform_id: str, model: str, variant: str,
                    build_key: str, built_on: str, max_bytes: int) -> dict[str, Any]:
        """Bring a fetched engine + manifest into the store (StoreError when refused).

        Everything the device sent is checked against what the plan expects: platform_id,
        model, variant (its options), build key, the engine's size and sha256.
        """
        source = "host {}".format(built_on)
        manifest_file = staged_dir / MANIFEST_NAME
        try:
            trust.regular_file_of_bounded_size(manifest_file, max_bytes, "fetched manifest")
            manifest = read_manifest(manifest_file, source)
            engine_file = staged_dir / manifest["engine_file"]
            size = trust.regular_file_of_bounded_size(engine_file, max_bytes, "fetched engine")
        except (trust.Untrusted, FileNotFoundError) as error:
            raise StoreError(str(error)) from error
        expected = {"platform_id": platform_id, "model": model, "build_key": build_key}
        for key, value in expected.items():
            if manifest[key] != value:
                raise StoreError("{}: its manifest says {} {!r}, the plan expects {!r}: "
                                 "refused".format(source, key, manifest[key], value))
        if variant_of(manifest) != variant:
            raise StoreError("{}: its engine was built with options {}, the plan expects {}: "
                             "refused".format(source, variant_of(manifest), variant))
        if size != manifest["engine_size"] or file_sha256(str(engine_file)) != \
                manifest["engine_sha256"]:
            raise StoreError("{}: the fetched engine {} does not match its manifest (size or "
                             "sha256): the transfer is corrupt; the next run builds it "
                             "again".format(source, engine_file))
        entry_dir = self.entry_dir(platform_id, model, variant)
        with self.locked():
            entry = self._entry_from_manifest(entry_dir, manifest)
            changed = not self._same_entry(entry)
            if changed:
                needed = size + manifest_file.stat().st_size + SPACE_MARGIN_BYTES
                if shutil.disk_usage(str(self.root)).free < needed:
                    raise StoreError(no_space_message(self.root, needed))
                try:
                    self._install(staged_dir, entry_dir, [entry.engine_file, MANIFEST_NAME])
                except OSError as error:
                    if error.errno == errno.ENOSPC:
                        raise StoreError(no_space_message(self.root, needed)) from error
                    raise
            index = self.index(repair=False)
            previous = index["entries"].get(entry.relpath) or {}
            host = built_on if changed or not previous.get("built_on") else previous["built_on"]
            # The same engine sent back by another host of the platform: that host verified
            # it (a confirmation, controller/plan.py round_work).
            confirmed = [] if changed else list(previous.get("confirmed_by") or []) + (
                [built_on] if built_on != host else [])
            index["entries"][entry.relpath] = self.index_entry(entry, host, hashed=True,
                                                               confirmed_by=confirmed)
            index["simulated"] = any(e.get("simulated") for e in index["entries"].values())
            index_changed = self._write_index(index)
            if self.signing_key is not None:
                try:
                    signing.load_signer(self.signing_key)  # created on first use
                    if self.statement_problem(entry) is not None:
                        self.sign_entry(entry)
                except signing.SigningError as error:
                    raise StoreError("{}: the engine was filed but not signed: {}".format(
                        source, error)) from error
        return {"changed": changed or index_changed, "path": str(entry_dir),
                "engine_sha256": manifest["engine_sha256"], "relpath": entry.relpath}

    # -- statements (controller/signing.py) -------------------------------------------------
    def keyring(self) -> dict[str, tuple[bytes, str | None]]:
        if self.signing_key is None:
            raise signing.SigningError("no signing key given to the store")
        path = signing.keyring_path(self.signing_key)
        if not path.is_file():
            raise signing.SigningError(
                "there is no keyring {} beside the signing key {}: give the key the store's "
                "engines were signed with (--signing-key, engine_signing_key)".format(
                    path, self.signing_key))
        return signing.read_keyring(path)

    def statement_problem(self, entry: StoreEntry, today: str | None = None
                          ) -> SignatureProblem | None:
        """Why the entry's statement does not vouch for its manifest's engine (None: it
        does). The engine's bytes are verify()'s business."""
        try:
            signing.check_statement_file(entry.dir / STATEMENT_NAME, self.keyring(),
                                         signing.expected_fields(entry.manifest, entry.variant),
                                         today)
        except SignatureProblem as problem:
            return problem
        return None

    def sign_entry(self, entry: StoreEntry) -> None:
        """Write the entry's statement, signed with the current key (call under the lock,
        after its engine matched its manifest)."""
        if self.signing_key is None:
            raise signing.SigningError("no signing key given to the store")
        signer = signing.load_signer(self.signing_key)
        document = signer.sign(signing.statement_payload(entry.manifest, entry.variant))
        write_json_atomic(entry.dir / STATEMENT_NAME, document)

    def _same_entry(self, entry: StoreEntry) -> bool:
        try:
            current = read_manifest(entry.manifest_path)
        except StoreError:
            return False
        return (current["build_key"] == entry.build_key
                and current["engine_sha256"] == entry.engine_sha256
                and entry.engine_path.is_file()
                and file_sha256(str(entry.engine_path)) == entry.engine_sha256)

    @staticmethod
    def _install(staged_dir: Path, entry_dir: Path, names: list[str]) -> None:
        """Replace entry_dir by a copy of the staged files; readers never see a partial entry."""
        parent = entry_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix="{}{}-".format(NEW_TEMP_PREFIX, entry_dir.name),
                                      dir=str(parent)))
        new_dir: Path | None = fresh  # None once it is the entry
        old_dir: Path | None = None
        try:
            for name in names:
                target = fresh / name
                shutil.copyfile(str(staged_dir / name), str(target))
                with open(str(target), "rb+") as handle:
                    os.fsync(handle.fileno())
                os.chmod(str(target), FILE_MODE)
            os.chmod(str(fresh), DIR_MODE)
            atomic.fsync_directory(fresh)
            if entry_dir.is_dir():
                # rename(2) cannot replace a non-empty directory: move the old one aside first.
                old_dir = Path(tempfile.mkdtemp(
                    prefix="{}{}-".format(OLD_TEMP_PREFIX, entry_dir.name), dir=str(parent)))
                os.rename(str(entry_dir), str(old_dir / entry_dir.name))
            os.rename(str(fresh), str(entry_dir))
            new_dir = None
            atomic.fsync_directory(parent)
        finally:
            if new_dir is not None:
                shutil.rmtree(str(new_dir), ignore_errors=True)
            if old_dir is not None:
                shutil.rmtree(str(old_dir), ignore_errors=True)

    # -- timing caches ----------------------------------------------------------------------
    # The controller cannot combine TensorRT timing caches (no TensorRT here): it keeps the set
    # of caches a platform's builders returned, pushes all of them to the next builder of that
    # platform, which combines them on the device (ITimingCache.combine) and returns one cache
    # holding them all, which replaces the ones it was given.
    def timing_cache_dir(self, platform_id: str) -> Path:
        return trust.confined(self.root, TIMING_CACHES_NAME,
                              trust.component(platform_id, "platform_id", "the plan"))

    def timing_caches(self, platform_id: str) -> list[Path]:
        """The platform's cache files (plain files named by their sha256), oldest first."""
        directory = self.timing_cache_dir(platform_id)
        if not directory.is_dir():
            return []
        found = [path for path in directory.iterdir()
                 if path.suffix == TIMING_CACHE_SUFFIX and trust.SHA256.match(path.stem)
                 and path.is_file() and not path.is_symlink()]
        return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name))

    def replace_timing_caches(self, platform_id: str, returned: Path, pushed: list[str], *,
                              source: str, max_bytes: int = TIMING_CACHE_MAX_BYTES) -> Path:
        """File the cache a builder returned in place of the caches it was pushed (their file
        names), under the lock; StoreError (nothing changed) when the file is refused."""
        try:
            size = trust.regular_file_of_bounded_size(returned, max_bytes, "timing cache",
                                                      limit="the timing cache limit")
        except (trust.Untrusted, FileNotFoundError) as error:
            raise StoreError("{}: {}".format(source, error)) from error
        if size == 0:
            raise StoreError("{}: its timing cache {} is empty: refused".format(source, returned))
        names = [trust.component(name, "pushed timing cache", "the round's work")
                 for name in pushed]
        digest: str = file_sha256(str(returned))
        directory = self.timing_cache_dir(platform_id)
        with self.locked():
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / (digest + TIMING_CACHE_SUFFIX)
            if not target.is_file():
                with open(str(returned), "rb") as original:
                    atomic.replace_atomically(target, lambda handle: shutil.copyfileobj(
                        original, handle), prefix=NEW_TEMP_PREFIX, mode=FILE_MODE)
            for name in names:
                if name != target.name:
                    with contextlib.suppress(FileNotFoundError):
                        (directory / name).unlink()
        return target

    # -- the old layout (format 1) --------------------------------------------------------
    def _legacy_entries(self) -> list[Path]:
        """<platform_id>/<model>/ directories of the old layout (manifest beside the engine)."""
        if not self.root.is_dir():
            return []
        return sorted(path.parent for path in self.root.glob("*/*/" + MANIFEST_NAME)
                      if not path.parent.name.startswith(".")
                      and not path.parent.parent.name.startswith("."))

    def migrate_legacy(self) -> list[str]:
        """Move every old-layout entry into its variant directory (call under the lock)."""
        moved = []
        for model_dir in self._legacy_entries():
            manifest = read_manifest(model_dir / MANIFEST_NAME)
            variant_dir = self.entry_dir(manifest["platform_id"], manifest["model"],
                                         variant_of(manifest))
            self._install(model_dir, variant_dir, [manifest["engine_file"], MANIFEST_NAME])
            for name in (manifest["engine_file"], MANIFEST_NAME):
                with contextlib.suppress(FileNotFoundError):
                    (model_dir / name).unlink()
            moved.append("{} -> {}".format(model_dir, variant_dir))
        return moved

    # -- the store tool -------------------------------------------------------------------
    def leftovers(self) -> list[Path]:
        """Staging areas and temporaries that a killed run left behind."""
        found = []
        if (self.root / STAGING_NAME).is_dir():
            found.append(self.root / STAGING_NAME)
        for path in self.root.rglob(".*"):
            if path.name.startswith(TEMP_PREFIXES):
                found.append(path)
        return sorted(set(found))

    def remove_leftovers(self) -> list[Path]:
        """Remove what ``leftovers`` finds, under the lock (a filing holds it while its
        temporaries exist, so none of a live one is removed). Returns what was removed."""
        with self.locked():
            return self._remove_leftovers()

    def _remove_leftovers(self) -> list[Path]:
        found = self.leftovers()
        for path in found:
            shutil.rmtree(str(path)) if path.is_dir() else path.unlink()
        return found

    def check(self) -> list[str]:
        """Every problem of the store (empty: healthy). Reads only."""
        problems = []
        if self._legacy_entries():
            problems.append("{} entries are in the old layout (<platform_id>/<model>/)".format(
                len(self._legacy_entries())))
        try:
            on_disk = json.loads((self.root / INDEX_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            on_disk = None
            problems.append("{} is missing".format(self.root / INDEX_NAME))
        except (OSError, ValueError) as error:
            on_disk = None
            problems.append("{} is unreadable: {}".format(self.root / INDEX_NAME, error))
        fresh = self.build_index({})
        problems += self.notes
        self._index = fresh
        signed = self.signing_key is not None
        if signed:
            try:
                self.keyring()
            except signing.SigningError as error:
                signers = self._statement_key_ids()
                problems.append("statements not checked: {}{}".format(error, (
                    "; the entries are signed by key(s) {}".format(", ".join(sorted(signers)))
                    if signers else "; no entry is signed yet: store repair creates the key "
                    "and signs every intact entry")))
                signed = False
        for rel in sorted(fresh["entries"]):
            entry = self.lookup(fresh["entries"][rel]["build_key"])
            reason = self.verify(entry, full=True) if entry else "unreadable"
            if reason:
                problems.append("{}: corrupt: {}".format(rel, reason))
            elif entry and signed:
                unsigned = self.statement_problem(entry)
                if unsigned is not None:
                    problems.append("{}: statement: {}".format(rel, unsigned))
        if on_disk is not None:
            listed = set((on_disk.get("entries") or {}) if isinstance(on_disk, dict) else {})
            for rel in sorted(listed ^ set(fresh["entries"])):
                problems.append("index.json and the manifests disagree on {}".format(rel))
        problems += ["left over by an interrupted run: {}".format(p) for p in self.leftovers()]
        return problems

    def _statement_key_ids(self) -> set[str]:
        """The keys named by the statements of the store's entries."""
        found = set()
        for directory in self._manifest_dirs():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                key_id = json.loads((directory / STATEMENT_NAME).read_text(
                    encoding="utf-8")).get("key_id")
                if isinstance(key_id, str):
                    found.add(key_id)
        return found

    def _repair_statement(self, rel: str, entry: StoreEntry) -> list[str]:
        """Re-sign an entry (its engine matched its manifest) whose statement is missing or
        signed by a retired key of our keyring; quarantine one signed by a key we do not
        know, altered, or vouching for another engine."""
        current = signing.load_signer(self.signing_key or "", create=False)
        problem = self.statement_problem(entry)
        if problem is None:
            document = json.loads((entry.dir / STATEMENT_NAME).read_text(encoding="utf-8"))
            if document.get("key_id") == current.key_id:
                return []
            why = "signed by the retired key {}".format(document.get("key_id"))
        elif problem.kind in (MISSING, EXPIRED):
            why = str(problem)
        else:
            reason = "its statement does not vouch for it: {}".format(problem)
            return ["quarantined {}: {} ({})".format(rel, reason, self.quarantine(entry, reason))]
        with self.locked():
            self.sign_entry(entry)
        return ["re-signed {} with key {} ({})".format(rel, current.key_id, why)]

    def repair(self) -> list[str]:
        """Quarantine corrupt entries, migrate the old layout, rebuild index.json, remove
        leftovers. Returns what was done."""
        done = []
        with self.locked():
            done += ["moved {}".format(line) for line in self.migrate_legacy()]
            done += ["removed {}".format(path) for path in self._remove_leftovers()]
            hosts = self._previous_hosts()
            self._index = self.build_index(hosts)
        signed = self.signing_key is not None
        if signed:
            try:  # a wrong --signing-key must not quarantine the store's entries
                self.keyring()
                signing.load_signer(self.signing_key or "", create=False)
            except signing.SigningError as error:
                signers = self._statement_key_ids()
                if signers or signing.keyring_path(Path(self.signing_key or "")).exists():
                    done.append("statements not repaired: {}; the entries are signed by key(s) "
                                "{}: give --signing-key of the key that signed them".format(
                                    error, ", ".join(sorted(signers)) or "none"))
                    signed = False
                else:  # nothing signed yet: the key's first use
                    done.append("created the signing key {} (key {})".format(
                        self.signing_key, signing.load_signer(self.signing_key or "").key_id))
        for rel, summary in sorted(self._index["entries"].items()):
            entry = self.lookup(summary["build_key"])
            reason = self.verify(entry, full=True) if entry else "unreadable"
            if reason and entry:
                done.append("quarantined {}: {} ({})".format(rel, reason,
                                                             self.quarantine(entry, reason)))
            elif entry and signed:
                done += self._repair_statement(rel, entry)
        with self.locked():
            if self._write_index(self.build_index(hosts)):
                done.append("rewrote {}".format(self.root / INDEX_NAME))
        return done
