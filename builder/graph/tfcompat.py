"""TensorFlow, imported lazily, with the same names on TF 1.x and 2.x.

The builder only handles GraphDef protos (no sessions): on TF 2.x that is
``tf.compat.v1``, on TF 1.12 (no ``compat.v1`` yet) plain ``tf``.
"""

import logging
import os

import numpy as np

from ..errors import UserError

_CACHE = {}  # "tf": the module, once imported


def import_tensorflow():
    """``import tensorflow`` without its start-up noise (ImportError as usual).

    TensorFlow prints CPU-feature and oneDNN lines (C++ log level INFO) and deprecation
    notices of the TF 1 API (Python logger, WARNING) that say nothing about the user's
    graph. Errors still show; a TF_CPP_MIN_LOG_LEVEL set by the user wins.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow  # noqa: PLC0415  (lazy: heavy, only some commands need it)

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tensorflow


def tf_v1():
    """The TF 1.x API module; UserError when TensorFlow is not installed."""
    if "tf" not in _CACHE:
        try:
            tensorflow = import_tensorflow()
        except ImportError as error:
            raise UserError(
                "TensorFlow is not importable ({}). Graph surgery needs the TensorFlow of the "
                "pinned environment: run the playbook's environment step, or install the "
                "TF 1.x wheel NVIDIA publishes for this JetPack".format(error)) from error
        compat = getattr(tensorflow, "compat", None)
        _CACHE["tf"] = getattr(compat, "v1", None) or tensorflow
    return _CACHE["tf"]


def read_graph_def(path):
    """Parse a frozen graph (.pb); UserError naming the file when it is not one."""
    tf = tf_v1()
    graph_def = tf.GraphDef()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UserError("cannot read the graph {}: {}. Check the model's 'graph' key in the "
                        "catalog".format(path, error.strerror or error)) from error
    from google.protobuf.message import DecodeError  # noqa: PLC0415  (comes with TF)

    try:
        graph_def.ParseFromString(data)
    except DecodeError as error:
        raise UserError("{} is not a TensorFlow frozen graph (GraphDef .pb): {}. Point the "
                        "model's 'graph' key at the exported frozen_inference_graph.pb"
                        .format(path, error)) from error
    if not graph_def.node:
        raise UserError("{} holds an empty graph. Point the model's 'graph' key at the "
                        "exported frozen_inference_graph.pb".format(path))
    return graph_def


def new_graph_def():
    return tf_v1().GraphDef()


def new_node(name, op):
    node = tf_v1().NodeDef()
    node.name = name
    node.op = op
    return node


def const_value(node):
    """The numpy value of a Const node (None for any other op)."""
    if node.op != "Const":
        return None
    tf = tf_v1()
    make_ndarray = getattr(tf, "make_ndarray", None)
    if make_ndarray is None:  # TF 1.12 has it only here
        from tensorflow.python.framework.tensor_util import (  # noqa: PLC0415
            MakeNdarray as make_ndarray,
        )
    return make_ndarray(node.attr["value"].tensor)


def set_const_value(node, array):
    """Make ``node`` a Const holding ``array`` (dtype attr and tensor, like tf.constant)."""
    tf = tf_v1()
    proto = tf.make_tensor_proto(np.asarray(array))
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)


def float_dtype_enum():
    return tf_v1().float32.as_datatype_enum


def graph_def_to_text(graph_def):
    from google.protobuf import text_format  # noqa: PLC0415  (comes with TF)

    return text_format.MessageToString(graph_def)
