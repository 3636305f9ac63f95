"""The SIMULATED UFF converter behind uff.from_tensorflow / from_tensorflow_frozen_model."""

import os
import sys

from . import tfproto, uffformat

# TF ops the UFF converter (uff/converters/tensorflow/converter_functions.py, 0.6.x) has a
# conversion function for. TF 1.14/1.15-style AddV2, FusedBatchNormV3 and Cast are not
# among them (nor Unpack or Range): graphs exported with newer TF need surgery before
# conversion. Shape, StridedSlice and Pack are: SSD box predictors compute their Reshape
# shapes with them, and the UFF parser folds those into constants.
SUPPORTED_TF_OPS = frozenset([
    "Placeholder", "Const", "Identity", "Add", "Sub", "Mul", "Div", "RealDiv", "Maximum",
    "Minimum", "Neg", "Abs", "Exp", "Log", "Sqrt", "Rsqrt", "Square", "Pow", "Relu",
    "Relu6", "Elu", "Selu", "Softplus", "Softsign", "Tanh", "Sigmoid", "Softmax", "Conv2D",
    "DepthwiseConv2dNative", "Conv2DBackpropInput", "BiasAdd", "MatMul", "MaxPool",
    "AvgPool", "FusedBatchNorm", "ConcatV2", "Reshape", "Squeeze", "Transpose", "Pad",
    "Mean", "Sum", "Prod", "Max", "Min", "StridedSlice", "Pack", "ExpandDims", "LeakyRelu",
    "Shape"
])

# Per uff version: the TensorFlow version its NOTE line names.
TESTED_TF = "1.12.0"


def uff_version_for(trt_version):
    """The uff package JetPack shipped next to a TensorRT release."""
    if trt_version[0] == 5:
        return "0.6.3"
    if trt_version[0] == 6:
        return "0.6.5"
    return "0.6.9"


class UffException(Exception):
    """uff.model.exceptions.UffException."""


def _say(quiet, text):
    if not quiet:
        sys.stdout.write(text + "\n")


def _reachable(nodes_by_name, output_nodes):
    order, seen, stack = [], set(), list(reversed(output_nodes))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        order.append(name)
        for reference in nodes_by_name[name].input:
            source, port = uffformat.node_tensor_name(reference)
            if port is not None and source in nodes_by_name:
                stack.append(source)
    return seen


# graphsurgeon.create_plugin_node names plugin fields `<field>_u_<type>`; the converter
# strips the suffix and gives the field that type. Unsuffixed attributes get the type of
# their TensorFlow attribute kind.
FIELD_SUFFIX = "_u_"
# suffix type -> field types of the attribute value it accepts (ints widen to floats)
_SUFFIX_ACCEPTS = {"int": ("int", "bool"), "bool": ("bool", "int"), "float": ("float", "int"),
                   "str": ("str",), "ilist": ("ilist", "list"),
                   "flist": ("flist", "ilist", "list")}
_SCALAR_KINDS = {"i": "int", "f": "float", "b": "bool", "s": "str", "type": "dtype",
                 "shape": "shape", "tensor": "tensor"}
_LIST_KINDS = (("i", "ilist"), ("f", "flist"), ("s", "slist"), ("type", "dtype_list"),
               ("b", "blist"), ("shape", "shape_list"))


def _kind_type(value):
    """The field type an AttrValue's own kind gives ('list' for an empty list)."""
    kind = value.WhichOneof("value")
    if kind != "list":
        return _SCALAR_KINDS.get(kind, kind)
    for field, type_name in _LIST_KINDS:
        if len(getattr(value.list, field)):
            return type_name
    return "list"


def _coerce(type_name, value):
    if type_name == "int":
        return int(value)
    if type_name == "bool":
        return bool(value)
    if type_name == "float":
        return float(value)
    if type_name == "ilist":
        return [int(item) for item in value]
    if type_name == "flist":
        return [float(item) for item in value]
    return value


def plugin_fields(node):
    """(fields, field types) of a custom-op node, suffixes stripped."""
    fields, types = {}, {}
    for key in sorted(node.attr):
        proto = node.attr[key]
        if proto.WhichOneof("value") is None:
            continue
        name, _, suffix = key.rpartition(FIELD_SUFFIX)
        own_type = _kind_type(proto)
        if not name or suffix not in _SUFFIX_ACCEPTS:
            name, type_name = key, own_type  # no (known) suffix: the attribute's kind
        elif own_type in _SUFFIX_ACCEPTS[suffix]:
            type_name = suffix
        else:
            raise UffException("{}: attribute {} holds a {} value, its suffix asks for {} "
                               "(SIMULATED converter check)".format(node.name, key, own_type,
                                                                     suffix))
        if name in fields:
            raise UffException("{}: plugin field {} is given twice ({})".format(
                node.name, name, key))
        fields[name] = _coerce(type_name, tfproto.attr_value(proto))
        types[name] = type_name
    return fields, types


def _check_strided_slice(node):
    # The real converter_functions.convert_strided_slice refuses these masks.
    if node.attr["ellipsis_mask"].i != 0:
        raise ValueError("ellipsis_mask not supported")
    if node.attr["new_axis_mask"].i != 0:
        raise ValueError("new_axis_mask not supported")


def _convert_node(node, quiet):
    data_inputs = [ref for ref in node.input if not ref.startswith("^")]
    converted = {"name": node.name, "inputs": data_inputs}
    if node.op not in SUPPORTED_TF_OPS:
        _say(quiet, "Warning: No conversion function registered for layer: {} yet.".format(node.op))
        _say(quiet, "Converting {} as custom op: {}".format(node.name, node.op))
        converted["op"] = "_" + node.op  # UFF custom ops carry a leading underscore
        converted["attrs"], converted["field_types"] = plugin_fields(node)
        return converted
    if node.op == "StridedSlice":
        _check_strided_slice(node)
    attrs = {key: tfproto.attr_value(node.attr[key]) for key in sorted(node.attr)}
    converted["attrs"] = attrs
    if node.op == "Const":
        converted["op"] = "Const"
        converted["const"] = attrs.pop("value")
    elif node.op == "Placeholder":
        converted["op"] = "Input"
    else:
        converted["op"] = node.op
    return converted


def convert(graphdef, output_nodes, trt_version, *, output_filename=None,  # noqa: PLR0912
            text=False, quiet=False, list_nodes=False, debug_mode=False,
            return_graph_info=False, preprocessor=None):
    if preprocessor is not None:
        raise NotImplementedError("SIMULATED uff: preprocessor scripts are not supported")
    if not hasattr(graphdef, "node"):
        raise UffException("from_tensorflow expects a tf.GraphDef, got {}".format(
            type(graphdef).__name__))
    uff_version = uff_version_for(trt_version)
    _say(quiet, "NOTE: UFF has been tested with TensorFlow {}. Other versions are not "
                "guaranteed to work".format(TESTED_TF))
    _say(quiet, "UFF Version {}".format(uff_version))
    nodes_by_name = {node.name: node for node in graphdef.node}
    if list_nodes:
        for node in graphdef.node:
            _say(False, node.name)
        return None
    if isinstance(output_nodes, str):
        output_nodes = [output_nodes]
    output_nodes = list(output_nodes or [])
    if not output_nodes:
        raise UffException("No output nodes given; pass output_nodes=[...]")
    for name in output_nodes:
        if name not in nodes_by_name:
            raise UffException("{} was not found in the graph. Please use the -l option to "
                               "list nodes in the graph.".format(name))
    keep = _reachable(nodes_by_name, output_nodes)
    inputs = [node for node in graphdef.node if node.name in keep and node.op == "Placeholder"]
    _say(quiet, "=== Automatically Deduced Input Nodes ===")
    _say(quiet, str([node.name for node in inputs]))
    _say(quiet, "=========================================")
    for name in output_nodes:
        _say(quiet, "Using output node {}".format(name))
    _say(quiet, "Converting to UFF graph")
    nodes = [_convert_node(node, quiet) for node in graphdef.node if node.name in keep]
    if debug_mode:
        _say(quiet, "DEBUG: Marking {} as outputs".format(output_nodes))
    for index, name in enumerate(output_nodes):
        nodes.append({"name": "MarkOutput_{}".format(index), "op": "MarkOutput",
                      "inputs": [name], "attrs": {}})
    graph = {"format": uffformat.FORMAT, "uff_version": uff_version,
             "tensorrt_version": ".".join(map(str, trt_version)), "nodes": nodes,
             "inputs": [node.name for node in inputs],
             "outputs": ["MarkOutput_{}".format(i) for i in range(len(output_nodes))]}
    _say(quiet, "No. nodes: {}".format(len(nodes)))
    data = uffformat.dumps(graph)
    if output_filename:
        _write(output_filename, data)
        _say(quiet, "UFF Output written to {}".format(output_filename))
        if text:
            text_name = os.path.splitext(output_filename)[0] + ".pbtxt"
            _write(text_name, uffformat.to_text(graph).encode())
            _say(quiet, "UFF Text Output written to {}".format(text_name))
    if return_graph_info:
        return data, {"inputs": graph["inputs"], "outputs": output_nodes}
    return data


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def load_frozen_graph(frozen_file):
    """Parse a frozen .pb with TensorFlow, imported lazily like the real converter does."""
    import tensorflow as tf  # noqa: PLC0415  (lazy on purpose: uff imports TF on use)

    graphdef = tf.compat.v1.GraphDef()
    with open(frozen_file, "rb") as handle:
        graphdef.ParseFromString(handle.read())
    return graphdef
