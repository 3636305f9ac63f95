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


_ITEMSIZE = {"float16": 2, "int8": 1, "bool": 1}
ACTIVATION_FLOOR = 1024 * 1024  # scratch TensorRT keeps for any engine (modelled)


class NetworkState:
    def __init__(self, explicit_batch, strongly_typed=False):
        self.explicit_batch = explicit_batch
        self.strongly_typed = strongly_typed
        self.inputs = []
        self.outputs = []
        self.layers = []
        self.source = None  # "uff" / "onnx" once a parser filled it

    def weights_nbytes(self):
        return sum(layer.weights_nbytes for layer in self.layers)

    def activation_nbytes(self, precision):
        """Device memory an execution context needs: the layers' outputs (float ones at
        half size in an fp16 engine) on top of a fixed scratch (modelled, not measured)."""
        total = ACTIVATION_FLOOR
        for layer in self.layers:
            for tensor in layer.outputs:
                size = _ITEMSIZE.get(tensor.dtype, 4)
                if precision == "fp16" and tensor.dtype == "float32":
                    size = 2
                total += tensor.volume() * size
        return total
