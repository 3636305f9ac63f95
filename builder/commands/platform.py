"""``platform``: print this Jetson's platform facts and its platform_id."""

import json
import sys

from ..platform.detect import detect_platform, supported, version_tuple
from ..trt import enginepath

# Order of the human-readable listing.
SHOWN_KEYS = ("platform_id", "module", "model", "soc", "compute_capability", "l4t", "jetpack",
              "tensorrt", "tensorrt_full", "cuda", "cudnn", "python", "dla_cores",
              "memory_mib")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "platform",
        help="detect the Jetson platform and its JetPack components",
        description="Detect the Jetson module, L4T / JetPack, TensorRT, CUDA and cuDNN "
                    "versions and print the platform_id engines are keyed by.",
    )
    parser.add_argument("--root", default="/",
                        help="filesystem root to inspect (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args):
    facts = detect_platform(args.root)
    ok, detail = supported(facts)
    path = None
    if ok:
        path = enginepath.ONNX if enginepath.can_build(
            enginepath.ONNX, version_tuple(facts["tensorrt"])) else enginepath.UFF
    facts = dict(facts, builder_supported=ok,
                 tensorrt_generation=detail if ok else None,
                 unsupported_reason=None if ok else detail,
                 engine_path=path)
    if args.json:
        json.dump(facts, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        width = max(len(key) for key in SHOWN_KEYS)
        for key in SHOWN_KEYS:
            value = facts[key]
            print("{}  {}".format(key.ljust(width), "-" if value is None else value))
        print("{}  {}".format("builder".ljust(width),
                              "supported ({}, engine path {} unless the catalog's "
                              "engine_path says otherwise)".format(detail, path) if ok
                              else "unsupported: " + detail))
    for warning in facts["warnings"]:
        sys.stderr.write("warning: {}\n".format(warning))
    return 0
