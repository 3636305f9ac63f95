"""``check``: validate the model catalog (the Ansible preflight runs it with --json)."""

import json
import sys

from ..errors import UserError
from ..graph.check import check_graph, tensorflow_available
from ..platform.detect import ONNX_FROM
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


def catalog_report(path, models=None, check_graphs=True, known_sums=None):
    """What ``check --json`` prints, as a dict: {"catalog", "models": {name: spec}} for a
    valid catalog, {"errors": [problem]} otherwise. The Ansible preflight calls it in-process,
    with its ``known_sums`` (load_catalog)."""
    try:
        catalog = load_catalog(path, models=models, check_graphs=check_graphs,
                               known_sums=known_sums)
    except CatalogError as error:
        return {"errors": [problem.as_dict() for problem in error.problems]}
    return {
        "catalog": catalog.path,
        "models": {name: spec.as_dict() for name, spec in catalog.models.items()},
    }


def graph_checks(catalog):
    """{model: GraphCheck} of the catalog's graphs (builder/graph/check.py: what the conversion
    would refuse on the device, and whether the UFF path can build the model), or None when
    TensorFlow is not installed here."""
    if not tensorflow_available():
        return None
    return {name: check_graph(spec) for name, spec in catalog.models.items()}


def _json_graph_report(checks):
    """The graph part of ``check --json``: problems per model, and the anchor check."""
    if checks is None:
        return {"graph_problems": None, "anchors": None}
    return {
        "graph_problems": {name: found.problems for name, found in checks.items()
                           if found.problems},
        "anchors": {name: {"grid_anchor_max_error": found.grid_anchor_max_error,
                           "uff_refusal": found.uff_refusal}
                    for name, found in checks.items()},
    }


def anchor_line(found):
    """What the anchor check says of a model, for people."""
    if found.uff_refusal:
        return "UFF path refused, builds through ONNX only (TensorRT >= {}.{}): {}".format(
            ONNX_FROM[0], ONNX_FROM[1], found.uff_refusal)
    if found.grid_anchor_max_error is None:
        return "anchors not compared"
    return "GridAnchor_TRT reproduces the graph's anchors (max abs error {:.2g})".format(
        found.grid_anchor_max_error)


def run(args):
    if args.json:
        report = catalog_report(args.catalog, models=args.models or None,
                                check_graphs=args.check_graphs)
        if "errors" not in report and args.check_graphs:
            report.update(_json_graph_report(graph_checks(load_catalog(
                args.catalog, models=args.models or None))))
        _print_json(report)
        return 2 if "errors" in report or report.get("graph_problems") else 0
    catalog = load_catalog(args.catalog, models=args.models or None,
                           check_graphs=args.check_graphs)
    checks = graph_checks(catalog) if args.check_graphs else {}
    problems = [problem for found in (checks or {}).values() for problem in found.problems]
    if problems:
        raise UserError("the catalog {} disagrees with the graph:\n  {}".format(
            args.catalog, "\n  ".join(problems)))
    for name, spec in catalog.models.items():
        pin = "sha256 pinned" if spec.sha256 else "no sha256 pin"
        checked = "graph checked" if checks is not None else \
            "graph not checked (no TensorFlow here)"
        print("OK {}: {} ({}, {}), engine {}".format(name, spec.graph, pin, checked,
                                                     spec.engine))
        if checks and name in checks:
            print("   " + anchor_line(checks[name]))
    return 0


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
