"""``convert``: frozen graph -> graph surgery -> .pbtxt + .uff (needs TensorFlow + uff)."""

import json
import sys

from ..commands.check import add_model_arguments
from ..trt.adapter import check_uff_support, optional_tensorrt
from ..trt.build import progress_printer
from ..uff.convert import convert_model, load_model_spec, prepare_out_dir


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert a model's frozen graph to UFF",
        description="Check the model's graph against the catalog, run the SSD graph "
                    "surgery (plugin nodes, input_order / num_classes derived from the "
                    "graph) and write <MODEL>.pbtxt and <MODEL>.uff into --out. Needs "
                    "TensorFlow and JetPack's uff converter. Exit 0: converted; 1: the "
                    "UFF converter refused the graph (its message is printed); 2: bad input "
                    "or missing package (the message says which).",
    )
    add_model_arguments(parser, "output directory (default: the current directory)",
                        "print the result (paths, checksums, derived values) as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args):
    spec = load_model_spec(args.catalog, args.model)
    out_dir = prepare_out_dir(args.out)
    trt = optional_tensorrt()
    if trt is not None:
        # JetPack 6: no UFF parser, so a .uff would be useless here.
        check_uff_support(trt)
    result = convert_model(spec, out_dir, progress_printer(sys.stderr),
                           trt_version=None if trt is None else str(trt.__version__))
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print("converted {}: {} (sha256 {})".format(spec.name, result.uff_path,
                                                    result.uff_sha256))
        print("surgery graph: {}".format(result.pbtxt_path))
    return 0
