"""Frozen graph -> graph surgery -> ``<model>.pbtxt`` + ``<model>.uff``.

TensorFlow and uff are imported only here and only when converting; both come from
JetPack / the pinned environment, not from this package's dependencies.
"""

import contextlib
import os
import sys

from ..atomic import file_sha256
from ..errors import UserError
from ..manifest import require_free_space
from ..spec.catalog import load_catalog
from ..trt.adapter import TensorRTFailure

# Names the UFF converter and the TensorRT UFF parser agree on for the SSD recipe.
UFF_INPUT = "Input"
UFF_OUTPUT = "MarkOutput_0"
# The converter writes about the graph's size; keep a margin for the .pbtxt (text, larger).
CONVERT_SPACE_FACTOR = 4


class ConvertResult(object):
    """What convert produced: paths, checksums, what the surgery derived, its warnings."""

    def __init__(self, *, uff_path, pbtxt_path, graph_sha256, uff_sha256, derived, warnings):
        self.uff_path = uff_path
        self.pbtxt_path = pbtxt_path
        self.graph_sha256 = graph_sha256
        self.uff_sha256 = uff_sha256
        self.derived = derived
        self.warnings = warnings

    def as_dict(self):
        return {
            "uff": self.uff_path,
            "pbtxt": self.pbtxt_path,
            "graph_sha256": self.graph_sha256,
            "uff_sha256": self.uff_sha256,
            "derived": self.derived,
            "warnings": self.warnings,
        }


def load_model_spec(catalog_path, model):
    """The validated ModelSpec of ``model`` (graph present and matching its pin)."""
    return load_catalog(catalog_path, models=[model], check_graphs=True).models[model]


def prepare_out_dir(path):
    """``--out``: an existing (or newly created) writable directory, absolute."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError("--out {}: exists and is not a directory; choose a directory".format(
            path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError("--out {}: cannot create it ({}); choose another "
                        "directory".format(path, error.strerror)) from error
    if not os.access(path, os.W_OK):
        raise UserError("--out {}: not writable by this user; choose another "
                        "directory".format(path))
    return path


def output_paths(spec, out_dir):
    """(uff path, pbtxt path) for a model in ``out_dir``."""
    base = os.path.join(out_dir, spec.name)
    return base + ".uff", base + ".pbtxt"


def check_graph(spec):
    """The graph's sha256, after checking it against the catalog's pin."""
    actual = file_sha256(spec.graph)
    if spec.sha256 and actual != spec.sha256.lower():
        raise UserError(
            "model {}: graph {} has sha256 {}, but the catalog pins {} (key 'sha256'); "
            "restore the graph or update the pin".format(
                spec.name, spec.graph, actual, spec.sha256)
        )
    return actual


def import_converters():
    """(tensorflow, uff) modules, or a UserError naming what is missing and who ships it."""
    try:
        from ..graph.tfcompat import import_tensorflow  # noqa: PLC0415  (needs numpy)

        tensorflow = import_tensorflow()
    except ImportError as error:
        raise UserError(
            "cannot import tensorflow ({}): convert needs TensorFlow 1.x (tf.compat.v1 works "
            "too). The pinned environment provides it (on JetPack 4: NVIDIA's TF 1.15 wheel "
            "for that JetPack); run the Ansible pinned-environment step or use its "
            "venv".format(error)
        ) from error
    try:
        import uff  # noqa: PLC0415 (JetPack package, only convert needs it)
    except ImportError as error:
        raise UserError(
            "cannot import uff ({}): the UFF converter comes with JetPack's TensorRT "
            "(package uff-converter-tf, TensorRT 5-8) and is not on PyPI; use the system "
            "python3 or a venv created with --system-site-packages. JetPack 6 (TensorRT 10) "
            "has no UFF: export the model to ONNX instead".format(error)
        ) from error
    return tensorflow, uff


def convert_model(spec, out_dir, progress, trt_version=None):
    """Run the surgery on ``spec``'s graph and write the .pbtxt and .uff atomically.

    ``progress(text)`` prints a progress line. Returns a ConvertResult; raises
    TensorRTFailure when the UFF converter refuses the graph.
    """
    graph_sha256 = check_graph(spec)
    progress("graph {} sha256 {}".format(spec.graph, graph_sha256))
    _tensorflow, uff = import_converters()
    from uff.model.exceptions import UffException  # noqa: PLC0415 (JetPack package)

    from ..graph import surgery  # noqa: PLC0415 (imports TensorFlow; checked above

    require_free_space(out_dir, os.path.getsize(spec.graph) * CONVERT_SPACE_FACTOR,
                      "the .uff and .pbtxt of {}".format(spec.name))
    progress("graph surgery on {}".format(spec.name))
    result = surgery.transform_model(spec, trt_version=trt_version)
    for warning in result.warnings:
        sys.stderr.write("warning: {}\n".format(warning))

    uff_path, pbtxt_path = output_paths(spec, out_dir)
    surgery.write_pbtxt(result, pbtxt_path)
    progress("wrote {}".format(pbtxt_path))

    progress("converting to UFF (uff {})".format(getattr(uff, "__version__", "?")))
    staging = os.path.join(out_dir, ".{}.partial".format(os.path.basename(uff_path)))
    try:
        # The converter prints its notes on stdout, which belongs to our --json output.
        with contextlib.redirect_stdout(sys.stderr):
            uff.from_tensorflow(result.graph_def, output_nodes=list(result.output_nodes),
                                output_filename=staging, text=False)
        os.replace(staging, uff_path)
    except UffException as error:
        raise TensorRTFailure("the UFF converter refused the graph of {}".format(spec.name),
                              [str(error)]) from error
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    progress("wrote {}".format(uff_path))
    return ConvertResult(uff_path=uff_path, pbtxt_path=pbtxt_path, graph_sha256=graph_sha256,
                         uff_sha256=file_sha256(uff_path), derived=dict(result.derived),
                         warnings=list(result.warnings))
