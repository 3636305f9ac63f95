# -*- coding: utf-8 -*-
"""trt-engine-path: which staged engine fits this device now, checked before the app loads it.

    trt-engine-path MODEL [--variant V] [--json]

The deploy installs it as ``<root>/bin/trt-engine-path`` (engine_deploy state=prepare) with
this file, module_utils/trt_signature.py, module_utils/trt_deploy.py and the builder's platform
detection (builder/platform/detect.py, the same code the builder and jetson_facts run) under
``<root>/bin/lib/``. Python 3.6+, standard library only: no TensorRT import, nothing is
deserialized. An app runs it at start and loads the path it prints:

    0  the absolute path of <root>/<model>/<platform_id>/<variant>/TRT_<model>.bin, whose
       platform_id is this device's as detected now, whose statement a trusted key signed
       and vouches for this model, platform and variant, and whose sha256 is the statement's
    2  a usage error (several variants staged and no --variant)
    3  no staged engine fits: the message names this device's platform_id and the staged ones
    4  the engine or its statement does not verify (sha256, signature, key, fields)

The engines sit where deploy_engines.yml stages them (``engine_deploy_stage_platforms``):

    <root>/<model>/<platform_id>/<variant>/TRT_<model>.bin  manifest.json  statement.json
    <root>/bin/keys/trusted-keys.json  the public keys the controller's statements may carry

Nothing below the root is read through a link (module_utils/trt_deploy.py's primitives).
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import sys
import time

from builder.errors import UserError
from builder.platform.detect import detect_platform
from module_utils.trt_deploy import (
    GUARD_DIR,
    GUARD_KEYS,
    KEYRING_FILE,
    STAGED_NAME_RE,
    STATEMENT,
    PlantedLink,
    engine_file_name,
    open_file_at,
    open_root,
    read_json_at,
    sha256_fd,
    staged_platforms_at,
    staged_variants_at,
)
from module_utils.trt_deploy_write import (
    keyring_document_at,
    open_dir_at,
)
from module_utils.trt_signature import (
    MALFORMED,
    SignatureProblem,
    check_statement,
    parse_keyring,
)

EXIT_OK, EXIT_USAGE, EXIT_NONE_FITS, EXIT_UNVERIFIED = 0, 2, 3, 4
REDEPLOY = ("run deploy_engines.yml for this device (it installs the store's signed engine "
            "again)")


class Refusal(Exception):
    def __init__(self, code, status, message, **details):
        super(Refusal, self).__init__(message)
        self.code = code
        self.status = status
        self.details = details


def read_keyring(root_fd, root):
    """The keyring the deploy installed (<root>/bin/keys/trusted-keys.json), no link
    followed (Refusal: exit 4, when it cannot be read)."""
    where = os.path.join(root, GUARD_DIR, GUARD_KEYS, KEYRING_FILE)
    try:
        try:
            document, where = keyring_document_at(root_fd, root)
        except (OSError, PlantedLink) as error:
            raise SignatureProblem(MALFORMED, "{}: cannot be read ({})".format(where, error)) \
                from error
        return parse_keyring(document, where)
    except SignatureProblem as error:
        raise Refusal(EXIT_UNVERIFIED, "unverified", "{}: nothing can be verified; {}".format(
            error, REDEPLOY)) from error


def check_engine(variant_fd, directory, keyring, expected):
    """The statement's payload once it and the engine's bytes verified (Refusal else)."""
    try:
        payload = check_statement(read_json_at(variant_fd, STATEMENT), keyring,
                                  time.strftime("%Y-%m-%d", time.gmtime()), expected,
                                  os.path.join(directory, STATEMENT))
    except SignatureProblem as error:
        raise Refusal(EXIT_UNVERIFIED, "unverified", "{}; the engine is refused: {}".format(
            error, REDEPLOY), problem=error.kind) from error
    path = os.path.join(directory, expected["engine_file"])
    try:
        actual = sha256_fd(open_file_at(variant_fd, expected["engine_file"], path))
    except (OSError, PlantedLink) as error:
        raise Refusal(EXIT_UNVERIFIED, "unverified", "{}: cannot be read ({}); {}".format(
            path, error, REDEPLOY), problem="engine") from error
    if actual != payload["engine_sha256"]:
        raise Refusal(EXIT_UNVERIFIED, "unverified", "{} has sha256 {}, its signed statement "
                      "says {}: the engine was altered or damaged and is refused; {}".format(
                          path, actual, payload["engine_sha256"], REDEPLOY), problem="sha256")
    return payload


def find_engine(root, model, variant, platform_id):
    """The record of the engine that fits ``platform_id`` (Refusal when none does)."""
    if not STAGED_NAME_RE.match(model):
        raise Refusal(EXIT_USAGE, "usage", "{!r} is not a model name".format(model))
    record = {"model": model, "platform_id": platform_id, "staged": []}
    root_fd = open_root(root)
    if root_fd is None:
        raise Refusal(EXIT_NONE_FITS, "none_fits", "{} does not exist: no engine is "
                      "installed".format(root), **record)
    try:
        model_dir = os.path.join(root, model)
        try:
            model_fd = open_dir_at(root_fd, model, model_dir)
        except (OSError, PlantedLink) as error:
            raise Refusal(EXIT_NONE_FITS, "none_fits", "no engine of {} is staged on this "
                          "device ({}: {})".format(model, model_dir, error), **record) from error
        try:
            record["staged"] = staged_platforms_at(model_fd)
            if platform_id not in record["staged"]:
                raise Refusal(EXIT_NONE_FITS, "none_fits", (
                    "no staged engine of {} fits this device: it is {}, the staged ones are "
                    "for {} (in {}). Build and deploy for this platform: ansible-playbook "
                    "build_engines.yml then deploy_engines.yml, with {} in "
                    "engine_deploy_stage_platforms or --limit this device").format(
                        model, platform_id, ", ".join(record["staged"]) or "no platform",
                        model_dir, platform_id), **record)
            platform_dir = os.path.join(model_dir, platform_id)
            platform_fd = open_dir_at(model_fd, platform_id, platform_dir)
            try:
                variants = staged_variants_at(platform_fd)
                record["variants"] = variants
                if variant is None and len(variants) > 1:
                    raise Refusal(EXIT_USAGE, "usage", "{} variants of {} are staged for {}: "
                                  "{}; pass --variant".format(len(variants), model, platform_id,
                                                             ", ".join(variants)), **record)
                chosen = variant if variant is not None else (variants or [None])[0]
                if chosen not in variants:
                    raise Refusal(EXIT_NONE_FITS, "none_fits", "no engine of {}{} is staged "
                                  "for {} (staged variants: {})".format(
                                      model, " variant " + chosen if chosen else "",
                                      platform_id, ", ".join(variants) or "none"), **record)
                directory = os.path.join(platform_dir, chosen)
                keyring = read_keyring(root_fd, root)
                variant_fd = open_dir_at(platform_fd, chosen, directory)
                try:
                    payload = check_engine(variant_fd, directory, keyring, {
                        "model": model, "platform_id": platform_id, "variant": chosen,
                        "engine_file": engine_file_name(model)})
                finally:
                    os.close(variant_fd)
            finally:
                os.close(platform_fd)
        finally:
            os.close(model_fd)
    finally:
        os.close(root_fd)
    return dict(record, variant=chosen, path=os.path.join(directory, payload["engine_file"]),
                engine_sha256=payload["engine_sha256"], build_key=payload["build_key"],
                verify=payload.get("verify"))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="trt-engine-path", description="Print the path of the staged TensorRT engine of "
        "MODEL that fits this device now, after checking its signature and sha256.")
    parser.add_argument("model")
    parser.add_argument("--variant", help="the engine options, e.g. fp16-ws1024 (needed when "
                        "several are staged)")
    parser.add_argument("--json", action="store_true", help="one JSON record on stdout")
    parser.add_argument("--root", help="the install root (default: the one this command is "
                        "installed in)")
    parser.add_argument("--system-root", default="/", help=argparse.SUPPRESS)  # tests
    return parser.parse_args(argv)


def main(argv=None, root=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = os.path.abspath(args.root or root or "/opt/trt-engines")
    try:
        try:
            facts = detect_platform(args.system_root)
        except UserError as error:
            raise Refusal(EXIT_NONE_FITS, "none_fits", "this device's platform cannot be "
                          "detected, so no engine can be said to fit: {}".format(error),
                          model=args.model, platform_id=None, staged=[]) from error
        record = dict(find_engine(root, args.model, args.variant, facts["platform_id"]),
                      status="ok")
        code = EXIT_OK
    except Refusal as refusal:
        record = dict(refusal.details, status=refusal.status, message=str(refusal))
        code = refusal.code
    if args.json:
        print(json.dumps(dict(record, exit=code), sort_keys=True))
    elif code == EXIT_OK:
        print(record["path"])
    if code != EXIT_OK:
        sys.stderr.write("trt-engine-path: {}\n".format(record["message"]))
    return code
