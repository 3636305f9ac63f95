"""UffParser, OnnxParser, CaffeParser doubles."""

from . import context, onnxparse, plugins, uffformat
from .builder import log_all
from .shapes import ShapeError, ShapeInference


def _parser_logger():
    """Parsers log through the logger of the last Builder/Runtime, like the C++ global one."""
    ctx = context.get()
    if ctx.last_logger is None:
        ctx.last_logger = ctx.classes["Logger"]()
    return ctx.last_logger


def _error(text):
    log_all(_parser_logger(), [(1, text)])
    return False


class UffParserImpl:
    def __init__(self):
        self._inputs = []
        self._outputs = []

    def register_input(self, name, shape, order=0):
        self._inputs.append((name, tuple(int(d) for d in shape), int(order)))
        return True

    def register_output(self, name):
        self._outputs.append(name)
        return True

    def parse(self, file, network, weights_type=0):  # noqa: A002  (the binding's name)
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return _error("UffParser: Could not open {} ({})".format(file, exc.strerror))
        return self.parse_buffer(data, network, weights_type)

    def parse_buffer(self, buffer, network, weights_type=0):
        try:
            graph = uffformat.loads(bytes(buffer))
        except uffformat.UffFormatError:
            return _error("UffParser: Could not read buffer.")
        state = network._state
        if state.explicit_batch:
            return _error("UffParser: Parser error: the UFF parser only supports implicit batch "
                          "networks; create the network without the EXPLICIT_BATCH flag")
        failure = self._validate(graph)
        if failure:
            return _error(failure)
        order_names = {0: "NCHW", 1: "NHWC", 2: "NC"}
        registered = {name: (shape, order_names[order]) for name, shape, order in self._inputs}
        inference = ShapeInference(graph, registered)
        nodes = {node["name"]: node for node in graph["nodes"]}
        try:
            inputs = [inference.infer(name)[0] for name, _, _ in self._inputs]
            outputs = []
            for name in self._outputs:
                for reference in nodes[name]["inputs"]:
                    outputs.extend(inference.tensors(reference, expand_all=True))
        except ShapeError as exc:
            return _error("UffParser: Parser error: {}".format(exc))
        state.inputs, state.outputs = inputs, outputs
        state.layers = [layer for layer in inference.layers if layer.op != "Input"]
        state.source = "uff"
        return True

    def _validate(self, graph):
        known = set(plugins.creator_names())
        names = {node["name"]: node for node in graph["nodes"]}
        for node in graph["nodes"]:
            op = node["op"]
            if op.startswith("_") and op[1:] not in known:
                return "UffParser: Validator error: {}: Unsupported operation {}".format(
                    node["name"], op)
        for name, _, _ in self._inputs:
            if names.get(name, {}).get("op") != "Input":
                return "UffParser: Validator error: {}: input not found in the UFF graph".format(
                    name)
        for name in self._outputs:
            if names.get(name, {}).get("op") != "MarkOutput":
                return "UffParser: Output error: Output {} not found".format(name)
        return None


class ParserErrorImpl:
    def __init__(self, code, description, node=-1):
        self._code, self._description, self._node = code, description, node

    def code(self):
        return self._code

    def desc(self):
        return self._description

    def node(self):
        return self._node

    def __str__(self):
        if self._description.startswith("In node "):
            return self._description
        return "In node {} (parse): {}: {}".format(self._node, self._code, self._description)


class OnnxParserImpl:
    MODEL_DESERIALIZE_FAILED = "MODEL_DESERIALIZE_FAILED"
    INVALID_GRAPH = "INVALID_GRAPH"

    def __init__(self, network, logger):
        self._network = network
        self._logger = logger
        self._errors = []

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]

    def clear_errors(self):
        self._errors = []

    def _fail(self, code, text, node=-1, node_line=None):
        self._errors.append(ParserErrorImpl(code, text, node))
        lines = [(1, "ModelImporter.cpp: " + node_line)] if node_line else []
        log_all(self._logger, lines + [(1, text)])
        return False

    def parse(self, model, path=None):
        if not self._network._state.explicit_batch:
            return self._fail(self.INVALID_GRAPH,
                              "This version of the ONNX parser only supports TensorRT "
                              "INetworkDefinitions with an explicit batch dimension. Please "
                              "ensure the network was initialized with the kEXPLICIT_BATCH flag.")
        try:
            inputs, outputs, layers = onnxparse.parse_model(model, context.get().version)
        except onnxparse.OnnxParseError as error:
            return self._fail(error.code, error.text, error.node, error.node_line)
        state = self._network._state
        state.inputs, state.outputs, state.layers = inputs, outputs, layers
        state.source = "onnx"
        return True

    def parse_from_file(self, model):
        try:
            with open(model, "rb") as handle:
                data = handle.read()
        except OSError:
            return self._fail(self.MODEL_DESERIALIZE_FAILED,
                              "Failed to open file: {}".format(model))
        return self.parse(data, model)


class CaffeParserImpl:
    def parse(self, deploy, model, network, dtype):
        _error("CaffeParser: SIMULATED parser does not read Caffe models ({})".format(deploy))
