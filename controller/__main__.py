"""``python3 -m controller``: the store tool and the README table generated from the schema.

    python3 -m controller store check DIR    verify every entry, the index, the ONNX exports,
                                             leftovers (exit 1 if anything is wrong, each
                                             problem on one line)
    python3 -m controller store repair DIR   quarantine corrupt entries, migrate the old layout,
                                             rebuild index.json, remove broken ONNX exports
                                             and leftovers of killed runs
    python3 -m controller schema --readme [--table deploy]
                                             the README's table of user variables (or of
                                             the deploy's variables)
    python3 -m controller signing show       the signing key and the keys the fleet accepts
    python3 -m controller signing rotate --accept-old-until YYYY-MM-DD
                                             a new signing key; the old one stays accepted
                                             through that day (then: store repair re-signs)

``--signing-key PATH``: engine_signing_key when the inventory sets it (default: the schema's,
in this project's directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import onnx_exports, schema, signing
from .store import EngineStore

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_KEY = PROJECT / schema.BY_NAME["engine_signing_key"].default


def signing_command(action: str, key: str, until: str | None) -> int:
    try:
        if action == "rotate":
            if not until:
                print("error: rotate needs --accept-old-until YYYY-MM-DD (the last day the "
                      "devices accept the old key)", file=sys.stderr)
                return 2
            old, new = signing.rotate(key, until)
            print("signing key {}: new key {}; the old key {} stays accepted through {}. Next: "
                  "python3 -m controller store repair <store> (re-signs every entry), then "
                  "deploy".format(key, new, old, until))
            return 0
        current = signing.load_signer(key, create=False)
    except signing.SigningError as error:
        print("error: {}".format(error), file=sys.stderr)
        return 2
    print("signing key {}: key {}".format(current.key_path, current.key_id))
    for key_id, (_, accepted_until) in sorted(signing.read_keyring(
            signing.keyring_path(current.key_path)).items()):
        print("  accepts {}{}".format(key_id, " through {}".format(accepted_until)
                                      if accepted_until else " (current)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m controller")
    commands = parser.add_subparsers(dest="command", required=True)
    store = commands.add_parser("store", help="check or repair an engine store")
    store.add_argument("action", choices=("check", "repair"))
    store.add_argument("dir", help="the store (engine_store_dir, e.g. artifacts/engines)")
    store.add_argument("--signing-key", default=str(DEFAULT_KEY),
                       help="engine_signing_key (its keyring verifies the statements)")
    keys = commands.add_parser("signing", help="show or rotate the signing key")
    keys.add_argument("action", choices=("show", "rotate"))
    keys.add_argument("--signing-key", default=str(DEFAULT_KEY), help="engine_signing_key")
    keys.add_argument("--accept-old-until", help="rotate: last day (UTC) the old key counts")
    generated = commands.add_parser("schema", help="print the README's table of user variables")
    generated.add_argument("--readme", action="store_true", required=True)
    generated.add_argument("--table", choices=sorted(schema.TABLES), default="user")
    args = parser.parse_args(argv)
    if args.command == "schema":
        sys.stdout.write(schema.readme_table(schema.TABLES[args.table]))
        return 0
    if args.command == "signing":
        return signing_command(args.action, args.signing_key, args.accept_old_until)
    engine_store = EngineStore(args.dir, signing_key=args.signing_key)
    if not engine_store.root.is_dir():
        print("error: {} is not a directory".format(engine_store.root), file=sys.stderr)
        return 2
    if args.action == "check":
        problems = engine_store.check() + [
            "{}: {}".format(path, problem)
            for path, problem in sorted(onnx_exports.export_problems(engine_store).items())]
        for line in problems:
            print(line)
        key = "" if args.signing_key == str(DEFAULT_KEY) else " --signing-key {}".format(
            args.signing_key)
        print("{}: {}".format(engine_store.root, "{} problem(s); run: python3 -m controller "
                              "store repair {}{}".format(len(problems), args.dir, key) if problems
                              else "healthy"))
        return 1 if problems else 0
    done = engine_store.repair() + onnx_exports.remove_broken_exports(engine_store)
    for line in done:
        print(line)
    print("{}: repaired ({} action(s))".format(engine_store.root, len(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
