"""``onnx``: frozen graph -> <MODEL>.onnx with EfficientNMS_TRT, verified (controller only)."""

import json
import os
import sys

from .. import atomic
from ..atomic import file_sha256
from ..commands.check import add_model_arguments
from ..errors import VerifyFailed
from ..platform.detect import ONNX_FROM_TEXT
from ..trt.build import progress_printer
from ..uff.convert import load_model_spec, prepare_out_dir

ONNX_PRECISIONS = ("fp32", "fp16")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "onnx",
        help="export a model's frozen graph to ONNX for TensorRT >= {} (on the "
             "controller)".format(ONNX_FROM_TEXT),
        description="Cut the SSD graph after the Preprocessor and before the Postprocessor, "
                    "convert it with tf2onnx, append the score converter and an "
                    "EfficientNMS_TRT node, then check it against TensorFlow on a test image "
                    "(onnxruntime for the graph, a numpy model of EfficientNMS_TRT for the "
                    "NMS). The catalog's box_decoder picks where the boxes are decoded. "
                    "Writes <MODEL>.onnx and <MODEL>.onnx.json (the report 'build "
                    "--onnx' copies into the manifest) into --out. Runs on the controller "
                    "(TensorFlow, tf2onnx, onnx, onnxruntime, onnx-graphsurgeon). Exit 0: "
                    "exported and verified; 1: exported but the verification failed (the "
                    "report says which figure); 2: bad input or missing package.",
    )
    add_model_arguments(parser, "output directory, created when missing (default: the current "
                        "directory)", "print the report as JSON")
    parser.add_argument("--precision", choices=ONNX_PRECISIONS, default="fp32",
                        help="the tensor types of the ONNX file: fp32 (default), or fp16 for a "
                             "strongly typed TensorRT (11 and later), whose engines compute in "
                             "the ONNX's types; the fp16 file is checked against the fp32 one")
    parser.set_defaults(run=run)
    return parser


def run(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's INFO lines are noise here
    from ..onnx import crosscheck, export, fp16  # noqa: PLC0415  (TensorFlow, tf2onnx: controller)

    progress = progress_printer(sys.stderr)
    spec = load_model_spec(args.catalog, args.model)
    if args.precision == "fp16":
        fp16.import_converter()  # before the long export: a missing package is said at once
    out_dir = prepare_out_dir(args.out)
    exported = export.export_model(spec, progress, spec.box_decoder)
    progress("checking it against TensorFlow (onnxruntime + the EfficientNMS model)")
    report = exported.report()
    with export.tool_step(spec, "the check against TensorFlow (onnxruntime)"):
        report["verification"] = crosscheck.crosscheck(exported)
    report["precision"] = args.precision
    if args.precision == "fp16":
        report["fp32_sha256"] = export.model_sha256(exported.model)
        progress("converting it to fp16 and checking that against the fp32 model")
        fp16_model = fp16.convert(exported)
        with export.tool_step(spec, "the check of the fp16 model (onnxruntime)"):
            report["fp16_verification"] = fp16.crosscheck_fp16(exported, fp16_model)
        exported.model = fp16_model
        report["verification"] = _with_fp16(report["verification"],
                                            report["fp16_verification"])
    onnx_path = export.write_model(exported, out_dir)
    progress("wrote {}".format(onnx_path))
    report["onnx"] = onnx_path
    report["onnx_sha256"] = file_sha256(onnx_path)
    _onnx_path, report_path = export.output_paths(spec, out_dir)
    atomic.write_json(report_path, report)
    verification = report["verification"]
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        cut = verification["cut"]["max_abs_error"]
        found = verification["detections"]
        print("exported {}: {} (sha256 {})".format(spec.name, onnx_path, report["onnx_sha256"]))
        print("cut tensors vs TensorFlow: max abs error boxes {:.3g}, logits {:.3g}, scores "
              "{:.3g} (tolerance {})".format(cut["boxes"], cut["logits"], cut["scores"],
                                            verification["cut"]["tolerance"]))
        print("detections vs TensorFlow's Postprocessor: {} of {} matched (min IoU {}, max "
              "score error {:.3g})".format(found["matched"], found["tensorflow"],
                                           found["min_iou"], found["max_score_error"]))
        if args.precision == "fp16":
            print("fp16 against fp32: {}".format(
                "matched" if report["fp16_verification"]["ok"] else "; ".join(
                    report["fp16_verification"]["problems"])))
        print("report: {}".format(report_path))
    if not verification["ok"]:
        raise VerifyFailed("the ONNX export of {} does not match TensorFlow: {}".format(
            spec.name, "; ".join(verification["problems"])))
    return 0


def _with_fp16(verification, fp16_verification):
    """The verification with the fp16 model's problems added (``ok`` only when both pass)."""
    problems = verification["problems"] + ["fp16: " + problem
                                           for problem in fp16_verification["problems"]]
    return dict(verification, ok=not problems, problems=problems)
