"""``verify``: run an engine on this device, time it, check its output, record it."""

import argparse
import json
import os
import sys

from ..errors import UserError, VerifyFailed
from ..manifest import manifest_path, read_manifest, record_verify
from ..trt.adapter import TrtAdapter, import_tensorrt
from ..trt.build import DEFAULT_PLUGIN_LIBRARY, progress_printer
from ..verify.cuda_runtime import CudaRuntime
from ..verify.run import verify_engine

EXIT_CODES = """exit codes: those of every command (python3 -m builder --help); 0: the engine
loaded, ran and its output is sane (recorded in manifest.json); 1: TensorRT or CUDA refused
(e.g. an engine built on another device or TensorRT version; their own error lines are
printed), or the output is insane (the reason is printed and recorded).
"""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="run an engine on a test image and check its output",
        description="Deserialize ENGINE with TensorRT, run it --runs times on --image (a "
                    "synthetic pattern without it), report the median latency and FPS, "
                    "check the SSD output (normalized boxes, confidences in [0, 1], keep "
                    "count <= keepTopK) and add the result as \"verify\" to the "
                    "manifest.json next to the engine when there is one.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("engine", metavar="ENGINE", help="engine file (TRT_<model>.bin)")
    parser.add_argument("--image", help="test image: binary PPM/PGM (other formats need "
                                        "Pillow); default: a synthetic pattern")
    parser.add_argument("--runs", type=int, default=10,
                        help="timed runs after one warm-up run (default: %(default)s)")
    parser.add_argument("--cudart", metavar="PATH",
                        help="libcudart to use (default: the dynamic loader's, else "
                             "/usr/local/cuda/lib64/libcudart.so*)")
    parser.add_argument("--plugin-library", action="append", metavar="PATH",
                        help="plugin library to load first, TensorRT 5/6 only (default: "
                             "{})".format(DEFAULT_PLUGIN_LIBRARY))
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorRT's INFO messages")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args):
    if not os.path.isfile(args.engine):
        raise UserError("{}: no such engine file; build it first (python3 -m builder "
                        "build MODEL)".format(args.engine))
    progress = progress_printer(sys.stderr)
    keep_top_k = _keep_top_k_from_manifest(args.engine)
    adapter = TrtAdapter(import_tensorrt(), verbose=args.verbose)
    cuda = CudaRuntime(args.cudart)
    libraries = []
    if adapter.needs_plugin_library():
        libraries = args.plugin_library or [DEFAULT_PLUGIN_LIBRARY]
    adapter.load_plugins(libraries)
    result = verify_engine(args.engine, adapter, cuda, image_path=args.image,
                           runs=args.runs, keep_top_k=keep_top_k, progress=progress)
    if args.json:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print("{}: median {:.2f} ms ({} FPS) over {} runs, {} detection(s)".format(
            args.engine, result["median_ms"], result["fps"], result["runs"],
            result["keep_count"]))
    written = record_verify(args.engine, result)
    if written:
        progress("recorded the result in {}".format(written))
    if not result["ok"]:
        for problem in result["problems"]:
            sys.stderr.write("  {}\n".format(problem))
        raise VerifyFailed("insane output from {}: {}".format(args.engine,
                                                              result["problems"][0]))
    return 0


def _keep_top_k_from_manifest(engine_path):
    """keepTopK of the model when the manifest next to the engine describes it, else None."""
    path = manifest_path(os.path.dirname(os.path.abspath(engine_path)))
    if not os.path.exists(path):
        return None
    manifest = read_manifest(path)
    if manifest.get("engine_file") != os.path.basename(engine_path):
        return None
    value = (manifest.get("spec") or {}).get("keep_top_k")
    return value if isinstance(value, int) else None
