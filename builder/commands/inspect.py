"""``inspect MODEL``: show what graph surgery derives from a model's graph, write the .pbtxt.

Needs TensorFlow only (no uff, no TensorRT): users run it to see num_classes,
input_order and the anchor layout before a build, and to read the transformed graph. It
also says how closely GridAnchor_TRT reproduces the graph's anchors, or why the UFF path
cannot build the model (then there is no transformed graph to write).
"""

import json
import os
import sys

from ..errors import UserError
from ..spec.catalog import load_catalog

DEFAULT_CATALOG = "models/models.yml"
SHOWN_KEYS = ("num_classes", "input_order", "num_layers", "feature_map_shapes",
              "anchors_per_location", "input_dims", "anchors", "min_size", "max_size",
              "aspect_ratios", "anchor_layer_scales", "grid_anchor_max_error", "variance",
              "nms_inputs")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "inspect", help="derive num_classes, input_order... from a model's graph and write "
                        "the transformed graph as .pbtxt")
    parser.add_argument("model", metavar="MODEL", help="model name in the catalog")
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="model catalog (default: %(default)s)")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help="directory for <MODEL>.pbtxt (default: current directory)")
    parser.add_argument("--trt-version", default=None, metavar="VERSION",
                        help="TensorRT version the graph is meant for, e.g. 8.2.1 (decides "
                             "the FlattenConcat fields; default: the >= 7 form)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(run=run)
    return parser


def _report(model, result, pbtxt_path):
    derived = result.derived
    report = {"model": model, "pbtxt": pbtxt_path, "output_nodes": result.output_nodes,
              "sources": derived["sources"], "warnings": result.warnings,
              "problems": result.problems, "uff_refusal": result.uff_refusal}
    for key in SHOWN_KEYS:
        report[key] = derived[key]
    return report


def _print_text(report):
    out = sys.stdout
    out.write("model {} (graph surgery)\n".format(report["model"]))
    for key in SHOWN_KEYS:
        source = report["sources"].get(key)
        out.write("  {:<21} {}{}\n".format(key, json.dumps(report[key]),
                                           "   <- " + source if source else ""))
    if report["uff_refusal"]:
        out.write("  UFF path refused      {}\n".format(report["uff_refusal"]))
    out.write("  transformed graph     {}\n".format(
        report["pbtxt"] or "none (the UFF path cannot build this model)"))
    for warning in report["warnings"]:
        out.write("  note: {}\n".format(warning))


def run(args):
    catalog = load_catalog(args.catalog, models=[args.model])
    spec = catalog.models[args.model]
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError("--out {}: exists and is not a directory. Pass a directory (it is "
                        "created when missing)".format(args.out))
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UserError("--out {}: cannot create it ({}). Pass a directory you can write "
                        "to".format(args.out, exc.strerror)) from None
    # Imported here: graph surgery needs numpy, which the other subcommands (verify on a
    # deploy-only device, roles/engine_deploy) must not require just to start the CLI.
    from ..graph.surgery import transform_model, write_pbtxt  # noqa: PLC0415

    result = transform_model(spec, trt_version=args.trt_version, strict=False)
    pbtxt_path = None
    if result.graph_def is not None:
        pbtxt_path = os.path.abspath(os.path.join(args.out, args.model + ".pbtxt"))
        write_pbtxt(result, pbtxt_path)
    report = _report(args.model, result, pbtxt_path)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        _print_text(report)
    if result.problems:
        # The graph's values were shown; the catalog must change before a build.
        raise UserError("the catalog disagrees with the graph:\n  " +
                        "\n  ".join(result.problems))
    return 0
