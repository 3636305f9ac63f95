"""The network a parser fills in: tensors, layers, inputs, outputs (implicit batch = CHW)."""


class TensorInfo:
    def __init__(self, name, shape, dtype="float32", layout="plain"):
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.layout = layout  # "chw" for image tensors (TF NHWC axes are remapped), else "plain"

    def volume(self):
        total = 1
        for size in self.shape:
            total *= size
        return total


class LayerInfo:
    def __init__(self, name, op, inputs, outputs, *, attrs=None, weights_nbytes=0,
                 plugin=False):
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs or {}
        self.weights_nbytes = weights_nbytes
        self.plugin = plugin


class NetworkState:
    def __init__(self, explicit_batch):
        self.explicit_batch = explicit_batch
        self.inputs = []
        self.outputs = []
        self.layers = []
        self.source = None  # "uff" / "onnx" once a parser filled it

    def weights_nbytes(self):
        return sum(layer.weights_nbytes for layer in self.layers)
