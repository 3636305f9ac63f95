"""The graph checks that need no device: run on the controller (preflight) and by ``check``.

The GraphDef parses, it is an Object Detection API SSD export, and what the graph says
(num_classes, input_order, input_dims, feature maps, anchors) agrees with the catalog. These
are the checks the conversion makes on the device, made before any device is touched.
"""

from ..errors import UserError


def graph_problems(spec):
    """[text] of everything wrong between ``spec`` (a catalog ModelSpec) and its graph."""
    from . import surgery  # noqa: PLC0415 (imports TensorFlow)

    try:
        result = surgery.transform_model(spec, trt_version=None, strict=False)
    except UserError as error:
        return [str(error)]
    return list(result.problems)


def tensorflow_available():
    try:
        import tensorflow  # noqa: F401, PLC0415 (only to know whether the checks can run)
    except ImportError:
        return False
    return True


def graph_input_dims(spec):
    """[3, H, W] of the graph's image input (imports TensorFlow)."""
    from . import ssd  # noqa: PLC0415
    from .tfcompat import read_graph_def  # noqa: PLC0415 (imports TensorFlow)

    return list(ssd.analyze(read_graph_def(spec.graph), spec.graph).input_dims)
