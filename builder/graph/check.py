"""The graph checks that need no device: run on the controller (preflight) and by ``check``.

The GraphDef parses, it is an Object Detection API SSD export, and what the graph says
(num_classes, input_order, input_dims, feature maps, anchors) agrees with the catalog. These
are the checks the conversion makes on the device, made before any device is touched. They
also tell whether the UFF path can build the model at all (GridAnchor_TRT reproduces the
graph's anchors: builder/graph/anchors.py), which decides where the model can be built.
"""

import collections

from ..errors import UserError

GraphCheck = collections.namedtuple("GraphCheck", "problems grid_anchor_max_error uff_refusal")
GraphCheck.__doc__ = """``problems``: [text] of everything wrong between the catalog and the
graph; ``grid_anchor_max_error``: largest difference between GridAnchor_TRT's boxes and the
graph's anchors (None when not computed); ``uff_refusal``: why the UFF path cannot build the
model (None: it can)."""


def check_graph(spec):
    """GraphCheck of ``spec`` (a catalog ModelSpec) and its graph."""
    from . import surgery  # noqa: PLC0415 (imports TensorFlow)

    try:
        result = surgery.transform_model(spec, trt_version=None, strict=False)
    except UserError as error:
        return GraphCheck([str(error)], None, None)
    return GraphCheck(list(result.problems), result.derived["grid_anchor_max_error"],
                      result.uff_refusal)


def tensorflow_available():
    # tfcompat (numpy) imported here: a deploy-only device starts the CLI without numpy.
    from .tfcompat import import_tensorflow  # noqa: PLC0415

    try:
        import_tensorflow()  # without its start-up noise, as the checks will use it
    except ImportError:
        return False
    return True


def graph_input_dims(spec):
    """[3, H, W] of the graph's image input (imports TensorFlow)."""
    from . import ssd  # noqa: PLC0415
    from .tfcompat import read_graph_def  # noqa: PLC0415 (imports TensorFlow)

    return list(ssd.analyze(read_graph_def(spec.graph), spec.graph).input_dims)
