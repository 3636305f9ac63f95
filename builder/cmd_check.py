"""``check``: validate the model catalog (the Ansible preflight runs it with --json)."""

import json
import sys

from .catalog import CatalogError, load_catalog

DEFAULT_CATALOG = "models/models.yml"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "check",
        help="validate the model catalog",
        description="Validate the model catalog and report every problem found.",
    )
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="catalog file (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print the validated specs (or the errors) as JSON on stdout")
    parser.add_argument("--no-graphs", dest="check_graphs", action="store_false",
                        help="do not check that graph files exist and match their sha256 pin")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="check only these models (default: all)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    try:
        catalog = load_catalog(args.catalog, models=args.models or None,
                               check_graphs=args.check_graphs)
    except CatalogError as error:
        if not args.json:
            raise
        _print_json({"errors": [problem.as_dict() for problem in error.problems]})
        return 2
    if args.json:
        _print_json({
            "catalog": catalog.path,
            "models": {name: spec.as_dict() for name, spec in catalog.models.items()},
        })
        return 0
    for name, spec in catalog.models.items():
        pin = "sha256 pinned" if spec.sha256 else "no sha256 pin"
        print("OK {}: {} ({}), engine {}".format(name, spec.graph, pin, spec.engine))
    return 0


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
