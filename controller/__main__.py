"""``python3 -m controller``: the store tool and the README table generated from the schema.

    python3 -m controller store check DIR    verify every entry, the index, the ONNX exports,
                                             leftovers (exit 1 if anything is wrong, each
                                             problem on one line)
    python3 -m controller store repair DIR   quarantine corrupt entries, migrate the old layout,
                                             rebuild index.json, remove broken ONNX exports
                                             and leftovers of killed runs
    python3 -m controller schema --readme    the README's table of user variables
"""

from __future__ import annotations

import argparse
import sys

from . import onnx_exports, schema
from .store import EngineStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m controller")
    commands = parser.add_subparsers(dest="command", required=True)
    store = commands.add_parser("store", help="check or repair an engine store")
    store.add_argument("action", choices=("check", "repair"))
    store.add_argument("dir", help="the store (engine_store_dir, e.g. artifacts/engines)")
    generated = commands.add_parser("schema", help="print the README's table of user variables")
    generated.add_argument("--readme", action="store_true", required=True)
    args = parser.parse_args(argv)
    if args.command == "schema":
        sys.stdout.write(schema.readme_table())
        return 0
    engine_store = EngineStore(args.dir)
    if not engine_store.root.is_dir():
        print("error: {} is not a directory".format(engine_store.root), file=sys.stderr)
        return 2
    if args.action == "check":
        problems = engine_store.check() + [
            "{}: {}".format(path, problem)
            for path, problem in sorted(onnx_exports.export_problems(engine_store).items())]
        for line in problems:
            print(line)
        print("{}: {}".format(engine_store.root, "{} problem(s); run: python3 -m controller "
                              "store repair {}".format(len(problems), args.dir) if problems
                              else "healthy"))
        return 1 if problems else 0
    done = engine_store.repair() + onnx_exports.remove_broken_exports(engine_store)
    for line in done:
        print(line)
    print("{}: repaired ({} action(s))".format(engine_store.root, len(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
