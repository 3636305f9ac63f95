"""``build``: (convert, then) build the TensorRT engine of one model or several on this device.

Several models are built one after the other in this one process (TensorFlow and TensorRT
imported once), each as its own job of cli.main with its own record; ``{model}`` in the
paths names each model's own files.
"""

import argparse
import contextlib
import json
import os
import sys

from .. import graphsums
from ..atomic import file_sha256
from ..commands import verify as cmd_verify
from ..commands.check import DEFAULT_CATALOG
from ..errors import UserError, VerifyFailed
from ..graph.check import graph_input_dims
from ..manifest import manifest_path, read_manifest
from ..platform.detect import ONNX_FROM_TEXT, detect_platform
from ..trt import enginepath
from ..trt.adapter import BuildOptions, TrtAdapter, import_tensorrt
from ..trt.build import (
    DEFAULT_PLUGIN_LIBRARY,
    EngineSource,
    build_engine,
    check_options_for_platform,
    progress_printer,
)
from ..trt.enginepath import choose_engine_path
from ..uff.convert import check_graph, convert_model, load_model_spec, prepare_out_dir

EXIT_CODES = """exit codes: those of every command (python3 -m builder --help); 0: engine and
manifest.json written. TensorRT's own error lines are printed on stderr, then a one-line
summary. With --verify the codes of 'verify' follow a successful build (1: the engine does
not load or its output is insane; the engine and manifest stay, the manifest records why).
On a failure before that (and when killed) no engine or manifest is written, and a previous
engine with its manifest stays as it was. manifest.json is written last: an engine without
one is an unfinished build.
With several models each is built whatever happened to the ones before; the exit code is
that of the first model that failed (--json prints one record per model, its own code's
kind in it).
"""
# Replaced in --catalog, --out, --uff and --onnx by each model's name.
MODEL_PLACEHOLDER = "{model}"
PER_MODEL_PATHS = ("catalog", "out", "uff", "onnx")
# What several models cannot share (a catalog of several models they can).
OWN_PATHS = ("out", "uff", "onnx")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "build",
        help="build the TensorRT engine of a model (converting it first)",
        description="Build TRT_<MODEL>.bin (the catalog's engine name) and manifest.json "
                    "in --out. The catalog's engine_path (default auto) and this device's "
                    "TensorRT pick the path: UFF before TensorRT {0} (without --uff the "
                    "model is converted first, as 'convert' does; the .uff and .pbtxt stay "
                    "in --out), ONNX from {0} (the .onnx made by 'onnx' on the controller, "
                    "no TensorFlow needed here).".format(ONNX_FROM_TEXT),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="model name in the catalog; several are built one after the "
                             "other by this process ({} in --out, and in --uff / --onnx "
                             "when given, names each one's files)".format(MODEL_PLACEHOLDER))
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="catalog file (default: %(default)s; may contain {})".format(
                            MODEL_PLACEHOLDER))
    parser.add_argument("--uff", help="build from this .uff (made by 'convert') instead of "
                                      "converting the graph (UFF path: TensorRT < {}, or "
                                      "engine_path: uff)".format(ONNX_FROM_TEXT))
    parser.add_argument("--onnx", help="build from this .onnx (made by 'onnx' on the "
                                       "controller; default: <MODEL>.onnx in --out). ONNX "
                                       "path: TensorRT >= {} unless engine_path: uff. Its "
                                       "report <file>.json must be next to it".format(
                                           ONNX_FROM_TEXT))
    parser.add_argument("--out", default=".",
                        help="output directory (default: the current directory)")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                        help="engine precision (default: %(default)s)")
    parser.add_argument("--workspace-mib", type=int, default=256, metavar="N",
                        help="TensorRT builder workspace in MiB (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=1, metavar="N",
                        help="maximum batch size (default: %(default)s)")
    parser.add_argument("--timing-cache", metavar="PATH",
                        help="reuse and update this timing cache (TensorRT 8+; ignored "
                             "with a warning before 8)")
    parser.add_argument("--merge-timing-cache", action="append", default=[], metavar="PATH",
                        help="combine this timing cache into --timing-cache before building "
                             "(repeatable); one from another device or TensorRT, or "
                             "unreadable, is dropped with a warning")
    parser.add_argument("--dla-core", type=int, metavar="N",
                        help="run on DLA core N with GPU fallback (Xavier / Orin only)")
    parser.add_argument("--plugin-library", action="append", metavar="PATH",
                        help="plugin library to load first, TensorRT 5/6 only (default: "
                             "{})".format(DEFAULT_PLUGIN_LIBRARY))
    parser.add_argument("--root", default="/",
                        help="filesystem root for platform detection (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorRT's INFO messages")
    parser.add_argument("--verify", action="store_true",
                        help="then verify the engine as 'verify' does (synthetic image) and "
                             "record the result in manifest.json: one device command instead "
                             "of two")
    parser.add_argument("--cudart", metavar="PATH",
                        help="with --verify: libcudart to use (as for 'verify')")
    parser.add_argument("--json", action="store_true",
                        help="print the manifest as JSON (with --verify: with its \"verify\" "
                             "record)")
    parser.set_defaults(run=run, jobs=model_jobs)
    return parser


def model_jobs(args):
    """One argparse namespace per model, ``{model}`` replaced in its paths (cli.main runs them).

    Several models must not share an output directory (each writes its manifest.json there)
    nor a --uff / --onnx file: refused before anything is built.
    """
    if len(set(args.models)) != len(args.models):
        raise UserError("a model is named twice: {}; name each once".format(
            " ".join(args.models)))
    if len(args.models) > 1:
        for name in OWN_PATHS:
            value = getattr(args, name)
            if value is not None and MODEL_PLACEHOLDER not in value:
                raise UserError("--{} {}: with several models it must contain {} (each "
                                "model has its own)".format(name, value, MODEL_PLACEHOLDER))
    jobs = []
    for model in args.models:
        job = argparse.Namespace(**vars(args))
        job.model = model
        for name in PER_MODEL_PATHS:
            value = getattr(args, name)
            if value is not None:
                setattr(job, name, value.replace(MODEL_PLACEHOLDER, model))
        jobs.append(job)
    return jobs


def run(args):
    progress = progress_printer(sys.stderr)
    spec = load_model_spec(args.catalog, args.model)
    options = BuildOptions(args.precision, args.workspace_mib, args.max_batch, args.dla_core)
    out_dir = prepare_out_dir(args.out)
    facts = detect_platform(args.root)
    progress("platform {}".format(facts["platform_id"]))
    check_options_for_platform(options, facts)
    adapter = TrtAdapter(import_tensorrt(), verbose=args.verbose)
    path = choose_engine_path(spec, adapter.version, adapter.version_text,
                              os.path.abspath(args.catalog))
    progress("engine path {} (catalog engine_path {}, TensorRT {})".format(
        path, spec.engine_path, adapter.version_text))
    warnings = []
    if path == enginepath.ONNX:
        source = onnx_source(spec, args, out_dir)
        graph_sha256 = check_graph(spec)
    else:
        source, graph_sha256 = _uff_source(spec, args, out_dir, adapter, progress=progress,
                                           warnings=warnings)
    # For the facts of later runs, which then need not read the graphs again.
    graphsums.record(out_dir, {spec.graph: graph_sha256, source.path: source.sha256})
    engine_path, manifest = build_engine(
        spec, source, out_dir, options=options, facts=facts, adapter=adapter,
        progress=progress, graph_sha256=graph_sha256, timing_cache=args.timing_cache,
        merge_timing_caches=args.merge_timing_cache, plugin_libraries=args.plugin_library,
        extra_warnings=warnings)
    if not args.json:
        print("built {} ({} bytes, sha256 {}) in {:.1f} s".format(
            engine_path, manifest["engine_size"], manifest["engine_sha256"],
            manifest["build_seconds"]))
    verify_failure = None
    if args.verify:
        try:
            _verify(engine_path, args)
        except VerifyFailed as failure:
            verify_failure = failure  # the manifest records it: print it, then fail
        manifest = read_manifest(manifest_path(out_dir))
    if args.json:
        json.dump(manifest, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    if verify_failure is not None:
        raise verify_failure
    return 0


def _uff_source(spec, args, out_dir, adapter, *, progress, warnings):
    """(EngineSource, graph sha256) of the UFF path: the given .uff or a fresh conversion."""
    if args.onnx:
        raise UserError("--onnx {}: model {} builds from UFF here (engine_path {}, TensorRT "
                        "{}); drop --onnx, or set engine_path: onnx in the catalog on a "
                        "TensorRT >= {} device".format(args.onnx, spec.name, spec.engine_path,
                                                       adapter.version_text, ONNX_FROM_TEXT))
    adapter.require_uff()
    if args.uff:
        if not os.path.isfile(args.uff):
            raise UserError("--uff {}: no such file; run 'convert {}' first or drop --uff "
                            "to convert as part of the build".format(args.uff, spec.name))
        uff_path = os.path.abspath(args.uff)
        # input_dims 'auto': read from the graph itself (no conversion to say it).
        dims = graph_input_dims(spec) if spec.input_dims == "auto" else spec.input_dims
        source = EngineSource("uff", uff_path, file_sha256(uff_path), dims)
        return source, check_graph(spec)
    converted = convert_model(spec, out_dir, progress, trt_version=adapter.version_text)
    warnings.extend(converted.warnings)
    # derived: the surgery checked the catalog against the graph
    dims = converted.derived["input_dims"] if spec.input_dims == "auto" else spec.input_dims
    source = EngineSource("uff", converted.uff_path, converted.uff_sha256, dims,
                          derived=converted.derived)
    return source, converted.graph_sha256


def onnx_source(spec, args, out_dir):
    """EngineSource of the ONNX path: the .onnx and the report 'builder onnx' wrote."""
    if args.uff:
        raise UserError("--uff {}: model {} builds from ONNX on this TensorRT (engine_path "
                        "{}); pass --onnx FILE (made by 'python3 -m builder onnx {}' on the "
                        "controller), or set engine_path: uff in the catalog".format(
                            args.uff, spec.name, spec.engine_path, spec.name))
    onnx_path = os.path.abspath(args.onnx or os.path.join(out_dir, spec.name + ".onnx"))
    export_hint = ("export it on the controller with 'python3 -m builder onnx {} --catalog "
                   "CATALOG --out DIR' and copy {}.onnx and {}.onnx.json into {}".format(
                       spec.name, spec.name, spec.name, out_dir))
    if not os.path.isfile(onnx_path):
        raise UserError("{}: no such file; the ONNX path (TensorRT >= {}) needs it: {}, or "
                        "name it with --onnx".format(onnx_path, ONNX_FROM_TEXT, export_hint))
    report = read_onnx_report(onnx_path, export_hint)
    actual = file_sha256(onnx_path)
    if report.get("onnx_sha256") != actual:
        raise UserError("{}: onnx_sha256 {} does not match {} (sha256 {}): the report "
                        "belongs to another export; {}".format(
                            onnx_path + ".json", report.get("onnx_sha256"), onnx_path, actual,
                            export_hint))
    if report.get("graph_sha256") != check_graph(spec):
        raise UserError("{}: made from a graph with sha256 {}, but the catalog's graph {} is "
                        "another; {}".format(onnx_path + ".json", report.get("graph_sha256"),
                                             spec.graph, export_hint))
    verification = report.get("verification") or {}
    if not verification.get("ok"):
        raise UserError("{}: the export failed its verification against TensorFlow ({}); "
                        "fix the model or the catalog, then {}".format(
                            onnx_path + ".json",
                            "; ".join(verification.get("problems") or ["no verification"]),
                            export_hint))
    dims = report["input"]["shape"][1:] if spec.input_dims == "auto" else spec.input_dims
    return EngineSource("onnx", onnx_path, actual, dims, onnx_report=report)


def read_onnx_report(onnx_path, export_hint):
    path = onnx_path + ".json"
    if not os.path.isfile(path):
        raise UserError("{}: no such file (the report of {}); {}".format(
            path, os.path.basename(onnx_path), export_hint))
    return read_manifest(path)


def _verify(engine_path, args):
    """Run 'verify' (its own defaults) on the new engine; it records its result in the manifest.

    With --json its human line goes to stderr, so that stdout stays one JSON document.
    """
    argv = [engine_path] + (["--cudart", args.cudart] if args.cudart else [])
    argv += ["--plugin-library=" + path for path in args.plugin_library or []]
    argv += ["--verbose"] if args.verbose else []
    parser = argparse.ArgumentParser(prog="build --verify")
    verify_args = cmd_verify.add_parser(parser.add_subparsers()).parse_args(argv)
    if not args.json:
        return cmd_verify.run(verify_args)
    with contextlib.redirect_stdout(sys.stderr):
        return cmd_verify.run(verify_args)
