"""``check``: validate the model catalog (the Ansible preflight runs it with --json)."""

import json
import sys

from ..errors import UserError
from ..graph.check import graph_problems, tensorflow_available
from ..spec.catalog import CatalogError, load_catalog

DEFAULT_CATALOG = "models/models.yml"



def add_model_arguments(parser, out_help, json_help):
    """MODEL, --catalog, --out, --json: the arguments of the commands that export one model."""
    parser.add_argument("model", metavar="MODEL", help="model name in the catalog")
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="catalog file (default: %(default)s)")
    parser.add_argument("--out", default=".", help=out_help)
    parser.add_argument("--json", action="store_true", help=json_help)

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
                        help="do not check that graph files exist and match their sha256 pin, "
                             "nor what the graphs say against the catalog")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="check only these models (default: all)")
    parser.set_defaults(run=run)
    return parser


def catalog_report(path, models=None, check_graphs=True):
    """What ``check --json`` prints, as a dict: {"catalog", "models": {name: spec}} for a
    valid catalog, {"errors": [problem]} otherwise. The Ansible preflight calls it in-process."""
    try:
        catalog = load_catalog(path, models=models, check_graphs=check_graphs)
    except CatalogError as error:
        return {"errors": [problem.as_dict() for problem in error.problems]}
    return {
        "catalog": catalog.path,
        "models": {name: spec.as_dict() for name, spec in catalog.models.items()},
    }


def graph_report(catalog):
    """{model: [problem]} of the graphs that disagree with the catalog (what the conversion
    would refuse on the device), or None when TensorFlow is not installed here."""
    if not tensorflow_available():
        return None
    found = {name: graph_problems(spec) for name, spec in catalog.models.items()}
    return {name: problems for name, problems in found.items() if problems}


def run(args):
    if args.json:
        report = catalog_report(args.catalog, models=args.models or None,
                                check_graphs=args.check_graphs)
        if "errors" not in report and args.check_graphs:
            report["graph_problems"] = graph_report(load_catalog(
                args.catalog, models=args.models or None))
        _print_json(report)
        return 2 if "errors" in report or report.get("graph_problems") else 0
    catalog = load_catalog(args.catalog, models=args.models or None,
                           check_graphs=args.check_graphs)
    graphs = graph_report(catalog) if args.check_graphs else {}
    if graphs:
        raise UserError("the catalog disagrees with the graph:\n  " + "\n  ".join(
            problem for problems in graphs.values() for problem in problems))
    for name, spec in catalog.models.items():
        pin = "sha256 pinned" if spec.sha256 else "no sha256 pin"
        checked = "graph checked" if graphs is not None else \
            "graph not checked (no TensorFlow here)"
        print("OK {}: {} ({}, {}), engine {}".format(name, spec.graph, pin, checked,
                                                     spec.engine))
    return 0


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
