#!/usr/bin/env python3
"""Build (or reuse) the controller-side wheelhouse of one pinned environment for the devices.

    python3 tools/wheelhouse.py --pin-set simulated-cp311 [--dest .cache/wheelhouse] [--json]
    python3 tools/wheelhouse.py add FILE.whl [--local-pins .cache/local-pins.yml]

Reads the pin set from roles/jetson_env/vars/main.yml (the single source of the pins),
writes DEST/<pin set>/requirements.txt (name==version --hash=sha256:...) and downloads the
wheels with `pip download --require-hashes --no-deps` for the devices' platform (not the
controller's). A wheelhouse that is already complete is reused without a download; a lock
file makes concurrent callers (one per device under Ansible) wait for the first one.
With --requirements-only only requirements.txt is written (devices that install from an index).

Pins no registry serves (`local: true`, NVIDIA's TensorFlow for Jetson) take their sha256 from
the local pin file, outside the tracked files: `add FILE` checks that the wheel's name fits a
pin set (name, version, Python, ABI, aarch64), copies it into that set's wheelhouse and
records its sha256 there. Pins of a pure-Python sdist (`sdist_sha256`) are downloaded
hash-checked and built into a wheel once, here on the controller. Besides requirements.txt,
requirements-no-local.txt leaves the local pins out (for devices that already have them).
Exit codes: 0 done, 2 bad input (unknown pin set, unhashed pin, a wheel that fits no pin
set, a local pin not added yet), 1 download or build failed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from builder.atomic import file_sha256, sha256_bytes, write_text  # noqa: E402 (REPO_ROOT first)

DEFAULT_PINS = REPO_ROOT / "roles" / "jetson_env" / "vars" / "main.yml"
DEFAULT_DEST = REPO_ROOT / ".cache" / "wheelhouse"
DEFAULT_LOCAL_PINS = REPO_ROOT / ".cache" / "local-pins.yml"
MANIFEST = "wheelhouse.json"
REQUIREMENTS = "requirements.txt"
REQUIREMENTS_NO_LOCAL = "requirements-no-local.txt"
REQUIREMENTS_BOOTSTRAP = "requirements-bootstrap.txt"
HEX = set("0123456789abcdef")


class WheelhouseError(Exception):
    """Bad input the user can fix; printed as one message, exit code 2."""


def _is_hash(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_local_pins(path: Path) -> dict:
    """{pin set: {normalized name: {"version", "sha256", "file"}}} ({} when absent)."""
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise WheelhouseError(f"{path}: not valid YAML ({error}). Delete it and run "
                              "`tools/wheelhouse.py add FILE` again for each wheel") from error
    if not isinstance(data, dict):
        raise WheelhouseError(f"{path}: expected a mapping of pin sets. Delete it and run "
                              "`tools/wheelhouse.py add FILE` again for each wheel")
    return data


def load_pin_set(pins_file: Path, name: str, local_pins: Path = DEFAULT_LOCAL_PINS) -> dict:
    try:
        data = yaml.safe_load(pins_file.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise WheelhouseError(f"{pins_file}: cannot read the pin sets: {error}") from error
    pin_sets = (data or {}).get("jetson_env_pin_sets") or {}
    if name not in pin_sets:
        known = ", ".join(sorted(pin_sets)) or "none"
        raise WheelhouseError(
            f"{pins_file}: key 'jetson_env_pin_sets': no pin set named '{name}'. Known: {known}. "
            "Set jetson_env_pin_set to one of them or add the set to that file."
        )
    pin_set = dict(pin_sets[name], pins=[dict(pin) for pin in pin_sets[name]["pins"]])
    local = read_local_pins(local_pins).get(name, {})
    unhashed = []
    for pin in pin_set["pins"]:
        if pin.get("local"):
            record = local.get(_normal(pin["name"]))
            if record and record.get("version") == pin["version"] and \
                    _is_hash(record.get("sha256")):
                pin["sha256"] = [record["sha256"]]
            else:
                pin["sha256"] = []          # not added yet: see missing_local()
            continue
        hashes = pin.get("sdist_sha256") or pin.get("sha256")
        if not hashes or not all(_is_hash(h) for h in hashes):
            unhashed.append(pin["name"])
    if unhashed:
        raise WheelhouseError(
            f"{pins_file}: pin set '{name}', key 'sha256': no real sha256 for "
            f"{', '.join(unhashed)}. Fill in the sha256 of each wheel file (the downloaded "
            "file's own: sha256sum FILE), or mark a wheel no registry serves `local: true` "
            "and add it with `tools/wheelhouse.py add FILE`: unhashed pins are never installed."
        )
    return pin_set


def missing_local(pin_set: dict) -> list[dict]:
    return [pin for pin in pin_set["pins"] if pin.get("local") and not pin["sha256"]]


def requirements_text(pin_set: dict, built=None, include_local=True, bootstrap=False) -> str:
    """name==version --hash=... per pin; built: {name: wheel sha256} of sdist pins built here
    (without it, an sdist pin is required by its sdist hash: pip builds it where it runs).
    bootstrap=True: only the `bootstrap` pins (pip itself: the venv's own pip is too old for
    today's wheel tags), which the role installs first; False: every other pin; None: all."""
    lines = ["# Generated by tools/wheelhouse.py from roles/jetson_env/vars/main.yml: do not edit."]
    for pin in pin_set["pins"]:
        if bootstrap is not None and bool(pin.get("bootstrap")) != bootstrap:
            continue
        if pin.get("local") and (not include_local or not pin["sha256"]):
            continue
        hashes = pin.get("sha256") or []
        if pin.get("sdist_sha256"):
            hashes = [built[pin["name"]]] if built else pin["sdist_sha256"]
        lines.append(f"{pin['name']}=={pin['version']} "
                     + " ".join(f"--hash=sha256:{digest}" for digest in hashes))
    return "\n".join(lines) + "\n"


def write_requirements(house: Path, pin_set: dict, built=None) -> tuple[str, bool]:
    """requirements.txt, -no-local and -bootstrap; (requirements.txt text, any changed)."""
    requirements = requirements_text(pin_set, built)
    changed = write_if_changed(house / REQUIREMENTS, requirements)
    changed = write_if_changed(house / REQUIREMENTS_NO_LOCAL, requirements_text(
        pin_set, built, include_local=False)) or changed
    changed = write_if_changed(house / REQUIREMENTS_BOOTSTRAP, requirements_text(
        pin_set, built, bootstrap=True)) or changed
    return requirements, changed


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    write_text(str(path), text)
    return True


def file_record(path: Path, known: dict) -> dict:
    """sha256 and size of a wheel; the manifest's hash is reused while size and mtime match."""
    stat = path.stat()
    cached = known.get(path.name)
    if cached and cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
        return cached
    return {
        "name": path.name,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": file_sha256(path),
    }


def scan(house: Path, pin_set: dict, built=None) -> tuple[list[dict], list[dict]]:
    """(records of the wheels that satisfy pins, pins without a matching wheel)."""
    manifest_path = house / MANIFEST
    known = {}
    if manifest_path.exists():
        records = json.loads(manifest_path.read_text())["files"]
        known = {record["name"]: record for record in records}
    records = {path.name: file_record(path, known) for path in sorted(house.glob("*.whl"))}
    by_hash = {record["sha256"]: record for record in records.values()}
    found, missing = [], []
    for pin in pin_set["pins"]:
        if pin.get("local") and not pin["sha256"]:
            continue                      # not added yet (missing_local)
        hashes = [built[pin["name"]]] if pin.get("sdist_sha256") and built and \
            pin["name"] in built else ([] if pin.get("sdist_sha256") else pin["sha256"])
        match = next((by_hash[h] for h in hashes if h in by_hash), None)
        if match is None:
            missing.append(pin)
        else:
            found.append(dict(match, local=bool(pin.get("local"))))
    return found, missing


def _pip_target(pin_set: dict) -> list[str]:
    target = pin_set["pip_download"]
    args = ["--python-version", pin_set["python"], "--implementation", target["implementation"],
            "--abi", target["abi"]]
    for platform in target["platforms"]:
        args += ["--platform", platform]
    for url in target.get("extra_index_urls") or []:
        args += ["--extra-index-url", url]
    return args


def _run_pip(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise RuntimeError(f"{what} failed (exit {result.returncode})")


def pip_download(house: Path, pin_set: dict, pins: list[dict]) -> None:
    """Download the wheels of ``pins`` (hash-checked) for the devices' platform."""
    local = [pin["name"] for pin in pins if pin.get("local")]
    if local:
        raise WheelhouseError(
            f"{house}: the wheel of {', '.join(local)} (a local pin) is gone from the "
            "wheelhouse. Run `tools/wheelhouse.py add FILE` again with the downloaded wheel")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=house, delete=False) as handle:
        handle.write(requirements_text({"pins": pins}, bootstrap=None))
    try:
        _run_pip([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                  "--require-hashes", "--no-deps", "--only-binary=:all:", *_pip_target(pin_set),
                  "--dest", str(house), "-r", handle.name], f"pip download into {house}")
    finally:
        os.unlink(handle.name)


def build_sdists(house: Path, pin_set: dict, built: dict) -> dict:
    """{name: sha256 of the built wheel} for every sdist pin, built once (pure Python: a
    py3 wheel built here installs on the devices)."""
    result = {}
    for pin in pin_set["pins"]:
        if not pin.get("sdist_sha256"):
            continue
        record = built.get(pin["name"])
        if record and record.get("sdist_sha256") in pin["sdist_sha256"] and \
                (house / record["wheel"]).is_file() and \
                file_sha256(house / record["wheel"]) == record["sha256"]:
            result[pin["name"]] = record
            continue
        with tempfile.TemporaryDirectory(dir=house) as work:
            requirement = Path(work) / "sdist.txt"
            requirement.write_text(f"{pin['name']}=={pin['version']} " + " ".join(
                f"--hash=sha256:{h}" for h in pin["sdist_sha256"]) + "\n")
            _run_pip([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                      "--require-hashes", "--no-deps", "--no-binary=:all:", "--dest", work,
                      "-r", str(requirement)], f"pip download of the {pin['name']} sdist")
            (sdist,) = [p for p in Path(work).iterdir() if p.name != "sdist.txt"]
            sdist_digest = file_sha256(sdist)
            _run_pip([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check",
                      "--no-deps", "--wheel-dir", work, str(sdist)],
                     f"building the {pin['name']} wheel from {sdist.name}")
            (wheel,) = Path(work).glob("*.whl")
            if not wheel.name.endswith("-none-any.whl"):
                raise RuntimeError(f"{pin['name']}: {wheel.name} is not pure Python; it "
                                   "cannot be built on the controller for the devices")
            os.replace(wheel, house / wheel.name)
        result[pin["name"]] = {"wheel": wheel.name, "sha256": file_sha256(house / wheel.name),
                               "sdist_sha256": sdist_digest}
    return result


def prune(house: Path, keep: list[dict]) -> None:
    """Remove wheels no pin refers to any more (an older version after a pin change)."""
    names = {record["name"] for record in keep}
    for path in house.glob("*.whl"):
        if path.name not in names:
            path.unlink()


def build(pins_file: Path, name: str, dest: Path, requirements_only: bool, *,
          local_pins: Path = DEFAULT_LOCAL_PINS, allow_missing_local: bool = False) -> dict:
    pin_set = load_pin_set(pins_file, name, local_pins)
    absent = missing_local(pin_set)
    if absent and not allow_missing_local:
        raise WheelhouseError(_add_advice(name, absent, local_pins))
    house = dest / name
    house.mkdir(parents=True, exist_ok=True)
    with (house / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another device's task may be downloading the same set
        result = {"pin_set": name, "dir": str(house),
                  "requirements": str(house / REQUIREMENTS),
                  "requirements_no_local": str(house / REQUIREMENTS_NO_LOCAL),
                  "local_missing": [{"name": p["name"], "version": p["version"],
                                     "download": p.get("download", "")} for p in absent],
                  "local_pins": [p["name"] for p in pin_set["pins"] if p.get("local")],
                  "bootstrap": [p["name"] for p in pin_set["pins"] if p.get("bootstrap")]}
        if requirements_only:
            requirements, changed = write_requirements(house, pin_set)
            return dict(result, changed=changed, downloaded=False, files=[], total_bytes=0,
                        requirements_sha256=sha256_bytes(requirements.encode()))
        manifest_path = house / MANIFEST
        previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        built = build_sdists(house, pin_set, previous.get("built", {}))
        built_hashes = {pin: record["sha256"] for pin, record in built.items()}
        found, missing = scan(house, pin_set, built_hashes)
        downloaded = bool(missing)
        if missing:
            pip_download(house, pin_set, missing)
            found, missing = scan(house, pin_set, built_hashes)
            if missing:
                raise RuntimeError("{}: still missing after download: {}".format(
                    house, ", ".join(f"{p['name']}=={p['version']}" for p in missing)))
        prune(house, found)
        requirements, changed = write_requirements(house, pin_set, built_hashes)
        manifest = json.dumps({"pin_set": name, "files": [
            {k: v for k, v in r.items() if k != "local"} for r in found], "built": built},
            indent=1, sort_keys=True) + "\n"
        changed = write_if_changed(manifest_path, manifest) or changed or downloaded
        files = [{"name": r["name"], "sha256": r["sha256"], "size": r["size"],
                  "local": r["local"]} for r in found]
        return dict(
            result,
            requirements_sha256=sha256_bytes(requirements.encode()),
            changed=changed,
            downloaded=downloaded,
            files=files,
            total_bytes=sum(r["size"] for r in found),
        )


def _add_advice(name: str, absent: list[dict], local_pins: Path) -> str:
    wanted = "; ".join("{} {} (from {})".format(p["name"], p["version"], p.get("download")
                                                or "its publisher") for p in absent)
    return (f"pin set '{name}' needs wheels no registry serves: {wanted}. Download the wheel "
            "and run `.venv/bin/python tools/wheelhouse.py add FILE` (checks the file name "
            f"against the pin set and records its sha256 in {local_pins}), or install that "
            "version in the devices' system Python, which the role then keeps")


WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<python>[^-]+)-"
                        r"(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$")


def add(wheel: Path, pins_file: Path, dest: Path, local_pins: Path) -> dict:
    """Check a downloaded wheel against the pin sets' local pins; copy it in and record it."""
    match = WHEEL_NAME.match(wheel.name)
    if not wheel.is_file():
        raise WheelhouseError(f"{wheel}: no such file. Pass the path of the downloaded .whl")
    if not match:
        raise WheelhouseError(f"{wheel.name}: not a wheel file name (NAME-VERSION-PYTHON-ABI-"
                              "PLATFORM.whl). Pass the .whl exactly as downloaded, not renamed")
    fields = match.groupdict()
    data = yaml.safe_load(pins_file.read_text()) or {}
    reasons, fits = [], []
    for set_name, pin_set in sorted((data.get("jetson_env_pin_sets") or {}).items()):
        for pin in pin_set["pins"]:
            if not pin.get("local") or _normal(pin["name"]) != _normal(fields["name"]):
                continue
            python = "cp" + pin_set["python"].replace(".", "")
            wrong = [f"{what} {got} (wants {want})" for what, got, want in (
                ("version", fields["version"], pin["version"]),
                ("python", fields["python"], python),
                ("abi", fields["abi"], pin_set["pip_download"]["abi"]))
                if got != want]
            if "aarch64" not in fields["platform"]:
                wrong.append(f"platform {fields['platform']} (wants aarch64: the Jetson's)")
            if wrong:
                reasons.append(f"{set_name}: " + ", ".join(wrong))
            else:
                fits.append((set_name, pin))
    if not fits:
        raise WheelhouseError(
            f"{wheel.name} fits no pin set of {pins_file}: " + ("; ".join(reasons) or
            f"no pin set has a local pin named {fields['name']}") + ". Download the wheel "
            "for your devices' JetPack and Python (see the pin set's `download` URL)")
    digest = file_sha256(wheel)
    records = read_local_pins(local_pins)
    for set_name, pin in fits:
        house = dest / set_name
        house.mkdir(parents=True, exist_ok=True)
        if wheel.resolve() != (house / wheel.name).resolve():
            shutil.copyfile(wheel, house / wheel.name)
        records.setdefault(set_name, {})[_normal(pin["name"])] = {
            "version": pin["version"], "sha256": digest, "file": wheel.name}
    local_pins.parent.mkdir(parents=True, exist_ok=True)
    write_if_changed(local_pins, "# Local pins (tools/wheelhouse.py add): wheels no registry "
                     "serves, hashed from the files\n" + yaml.safe_dump(records, sort_keys=True))
    return {"wheel": wheel.name, "sha256": digest, "pin_sets": [s for s, _ in fits],
            "local_pins": str(local_pins)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["add"]:
        return main_add(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pin-set", required=True, help="name under jetson_env_pin_sets")
    parser.add_argument("--pins", type=Path, default=DEFAULT_PINS, help=f"default {DEFAULT_PINS}")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"default {DEFAULT_DEST}")
    parser.add_argument("--local-pins", type=Path, default=DEFAULT_LOCAL_PINS,
                        help=f"default {DEFAULT_LOCAL_PINS}")
    parser.add_argument("--requirements-only", action="store_true")
    parser.add_argument("--allow-missing-local", action="store_true",
                        help="leave local pins not added yet out (reported in the JSON)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = build(args.pins, args.pin_set, args.dest.resolve(), args.requirements_only,
                       local_pins=args.local_pins.resolve(),
                       allow_missing_local=args.allow_missing_local)
    except WheelhouseError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except RuntimeError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        state = "downloaded" if result["downloaded"] else "complete, reused"
        count, size = len(result["files"]), result["total_bytes"]
        print(f"{result['dir']}: {count} wheels, {size} bytes ({state})")
    return 0


def main_add(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wheelhouse.py add", description=(
        "Record a downloaded wheel no registry serves (NVIDIA's TensorFlow for Jetson)"))
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--pins", type=Path, default=DEFAULT_PINS)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--local-pins", type=Path, default=DEFAULT_LOCAL_PINS,
                        help=f"where the sha256 is recorded (default {DEFAULT_LOCAL_PINS})")
    args = parser.parse_args(argv)
    try:
        result = add(args.wheel, args.pins, args.dest.resolve(), args.local_pins.resolve())
    except WheelhouseError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    print("{}: sha256 {} recorded in {} for pin set(s) {}".format(
        result["wheel"], result["sha256"], result["local_pins"], ", ".join(result["pin_sets"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
