"""The guard ``<root>/bin/trt-engine-path`` installed as roles/engine_deploy installs it (the
files of controller/deploy_plan.py GUARD_FILES under bin/lib/, the launcher from its
template), and store entries signed by the controller, laid out as the deploy stages them."""

import hashlib
import json
import shutil
from pathlib import Path

from controller import signing
from controller.deploy_plan import GUARD_FILES, GUARD_TEMPLATE
from controller.store import EngineStore
from tests.unit.store_helpers import staged

REPO = Path(__file__).resolve().parents[2]


def install_guard(root, python):
    """<root>/bin/trt-engine-path running ``python``; its path."""
    bin_dir = Path(root) / "bin"
    lib = bin_dir / "lib"
    for name in GUARD_FILES:
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(str(REPO / name), str(lib / name))
    (lib / "module_utils" / "__init__.py").write_text("")
    launcher = bin_dir / "trt-engine-path"
    launcher.write_text((REPO / GUARD_TEMPLATE).read_text().replace(
        "{{ engine_deploy_system_python }}", str(python)))
    launcher.chmod(0o755)
    return launcher


def signed_entry(store_dir, key, model, platform_id, *, payload=None):
    """A store entry filed and signed by the controller (variant fp16-ws512)."""
    store = EngineStore(store_dir, signing_key=key)
    build_key = hashlib.sha256((model + platform_id).encode()).hexdigest()
    staging = store.staging_dir("host") / model
    staged(staging, model, platform_id, build_key,
           payload=payload or "SIMULATED {} {}".format(model, platform_id).encode())
    store.file_engine(staging, platform_id=platform_id, model=model, variant="fp16-ws512",
                      build_key=build_key, built_on="host", max_bytes=1 << 20)
    shutil.rmtree(str(store.root / ".staging"))
    return store.lookup(build_key)


def stage_by_hand(root, entry, key, variant=None):
    """The entry's files in <root>/<model>/<platform_id>/<variant>/ and the keyring in
    <root>/keys/ (what the deploy's stage step leaves); the staged directory."""
    target = Path(root) / entry.model / entry.platform_id / (variant or entry.variant)
    target.mkdir(parents=True, exist_ok=True)
    for name in (entry.engine_file, "manifest.json", "statement.json"):
        shutil.copyfile(str(entry.dir / name), str(target / name))
    keys = Path(root) / "bin" / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(str(signing.keyring_path(key)), str(keys / "trusted-keys.json"))
    return target


def read_record(stdout):
    return json.loads(stdout)
