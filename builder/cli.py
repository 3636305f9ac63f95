"""``python3 -m builder``: one subcommand per module."""

import argparse
import importlib
import sys

from . import __version__
from .errors import UserError

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


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python3 -m builder",
        description="Build TensorRT engines from SSD frozen graphs on a Jetson.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for _name, module_name in SUBCOMMANDS:
        module = importlib.import_module("." + module_name, __package__)
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:
        sys.stderr.write("error: {}\n".format(error))
        return 2
