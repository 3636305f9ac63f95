"""``python3 -m builder``: one subcommand per module, and the one place exit codes are decided.

Every command ends as a record: with ``--json`` it is the only thing on stdout,

    {"record": 1, "command": "build", "status": "ok" | "failed",
     "kind": null | "user" | "disk" | "tensorrt" | "oom" | "verify" | "bug",
     "message": "...", "tensorrt_lines": [...], "details": {...}, "result": <the command's JSON>,
     "seconds": <its wall time>}

and the message of a failure also goes to stderr. The controller reads this record; it never parses
stderr. A Python traceback is a bug in the builder, reported as ``bug`` with its last line,
never as a TensorRT failure.

A record is one line (JSON lines). A command that takes several subjects (``build`` with
several models) sets ``jobs(args) -> [args of one subject]`` in its parser: each job runs in
this process after the previous one ended (its memory released), prints its own record with
``"model"``, and one job's failure does not stop the next. The exit code is then the first
failed job's (0 when every job succeeded).
"""

import argparse
import contextlib
import errno
import gc
import importlib
import io
import json
import sys
import time
import traceback

from . import __version__
from .errors import DiskSpaceError, UserError, VerifyFailed
from .trt.adapter import TensorRTFailure
from .verify.cuda_runtime import CudaError

RECORD_VERSION = 1
# Subcommand name -> module in this package exposing add_parser(subparsers) and run(args).
SUBCOMMANDS = (
    ("check", "commands.check"),
    ("platform", "commands.platform"),
    ("inspect", "commands.inspect"),
    ("convert", "commands.convert"),
    ("onnx", "commands.onnx"),
    ("build", "commands.build"),
    ("verify", "commands.verify"),
)
EXIT_CODES = {None: 0, "tensorrt": 1, "verify": 1, "user": 2, "disk": 3, "oom": 4, "bug": 70}
EXIT_HELP = """exit codes (every command):
  0  done
  1  TensorRT refused (parse, build, deserialize, run) or verify found insane output
  2  bad input or environment: the message says which file / option and what to do
  3  not enough disk space (where, how much is free and needed)
  4  out of memory (TensorRT or CUDA could not allocate)
  70 a bug in the builder (the traceback's last line is shown): please report it
"""
# TensorRT's and CUDA's words for an allocation that failed.
OOM_MARKERS = ("outofmemory", "out of memory", "cuda error in allocate: 2",
               "cudaerrormemoryallocation")


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python3 -m builder",
        description="Build TensorRT engines from SSD frozen graphs on a Jetson.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for _name, module_name in SUBCOMMANDS:
        module = importlib.import_module("." + module_name, __package__)
        module.add_parser(subparsers)
    return parser


def _mentions_oom(texts):
    return any(marker in text.lower() for text in texts for marker in OOM_MARKERS)


def classify(error):  # noqa: PLR0911 (one return per kind reads best)
    """(kind, message, TensorRT's lines, details) of the exception a command ended with."""
    if isinstance(error, DiskSpaceError):
        return "disk", str(error), [], error.details
    if isinstance(error, UserError):
        return "user", str(error), [], {}
    if isinstance(error, TensorRTFailure):
        kind = "oom" if _mentions_oom([error.summary] + error.lines) else "tensorrt"
        return kind, error.summary, error.lines, {}
    if isinstance(error, CudaError):
        return ("oom" if _mentions_oom([str(error)]) else "tensorrt"), "CUDA: {}".format(
            error), [], {}
    if isinstance(error, VerifyFailed):
        return "verify", str(error), [], {}
    if isinstance(error, MemoryError):
        return "oom", "the builder ran out of memory (MemoryError)", [], {}
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "disk", "no space left on the device writing {}: {}".format(
            error.filename or "a file", error.strerror), [], {"directory": error.filename}
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return "bug", "builder bug: {} (please report it with the output above)".format(last), [], {}


def _result_of(text):
    """The command's own JSON output (None when it printed none, or not JSON)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"output": text}


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        jobs = args.jobs(args) if hasattr(args, "jobs") else [args]
    except UserError as error:  # the command line as a whole is wrong: one record says so
        return EXIT_CODES[_finish(args, classify(error), "", time.time())]
    first_failure = None
    for job in jobs:
        kind = _run_recorded(job)
        first_failure = first_failure or kind
        gc.collect()  # what the job left in reference cycles goes before the next starts
    return EXIT_CODES[first_failure]


def _run_recorded(args):
    """Run one job and print its record; its failure kind (None when it succeeded)."""
    as_json = bool(getattr(args, "json", False))
    captured = io.StringIO()
    failure = None
    rc = 0
    started = time.time()
    try:
        with contextlib.redirect_stdout(captured) if as_json else contextlib.ExitStack():
            rc = args.run(args) or 0
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 (every ending becomes a record; a bug is named as such)
        failure = classify(error)
        if failure[0] == "bug":
            traceback.print_exc(file=sys.stderr)
    if failure is None and rc:
        # A command that reported its own problems (check --json: the catalog's errors).
        failure = ("user", "the {} command reported problems (see result)".format(
            args.command), [], {})
    return _finish(args, failure, captured.getvalue(), started)


def _finish(args, failure, output, started):
    """Print the record of a job (with --json) and its failure on stderr; the failure kind."""
    kind, message, lines, details = failure or (None, "", [], {})
    if getattr(args, "json", False):
        record = {"record": RECORD_VERSION, "command": args.command,
                  "status": "failed" if failure else "ok", "kind": kind, "message": message,
                  "tensorrt_lines": lines, "details": details, "result": _result_of(output),
                  "seconds": round(time.time() - started, 3)}
        if hasattr(args, "jobs"):
            # None: the command line itself was refused, before any of its subjects ran.
            record["model"] = getattr(args, "model", None)
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        sys.stdout.flush()
    if failure:  # on stderr too: a person running --json reads it there
        for line in lines:
            sys.stderr.write("  {}\n".format(line))
        sys.stderr.write("error: {}\n".format(message))
    sys.stderr.flush()
    return kind
