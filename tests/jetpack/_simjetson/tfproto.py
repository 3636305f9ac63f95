"""Reading TensorFlow GraphDef protos without importing TensorFlow (attribute walking only)."""

import struct

# tensorflow/core/framework/types.proto DataType values we meet in SSD graphs.
DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 6: "int8", 7: "string",
          9: "int64", 10: "bool", 19: "float16"}
_ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "uint8": 1, "int8": 1, "int64": 8,
             "bool": 1, "float16": 2}
_STRUCT = {"float32": "f", "float64": "d", "int32": "i", "int64": "q", "uint8": "B",
           "int8": "b", "bool": "?"}
SMALL_CONST = 64  # constants up to this many elements keep their values (shapes, axes)


def dtype_name(value):
    return DTYPES.get(int(value), "dtype{}".format(int(value)))


def tensor_summary(tensor):
    """{'dtype', 'shape', 'nbytes', 'values'?} of a TensorProto."""
    dtype = dtype_name(tensor.dtype)
    shape = [int(dim.size) for dim in tensor.tensor_shape.dim]
    count = 1
    for size in shape:
        count *= size
    summary = {"dtype": dtype, "shape": shape, "nbytes": count * _ITEMSIZE.get(dtype, 4)}
    if count <= SMALL_CONST and dtype in _STRUCT:
        values = _tensor_values(tensor, dtype, count)
        if values is not None:
            summary["values"] = values
    return summary


def _tensor_values(tensor, dtype, count):
    if tensor.tensor_content:
        content = bytes(tensor.tensor_content)
        code = _STRUCT[dtype]
        if len(content) != count * struct.calcsize(code):
            return None
        return list(struct.unpack("<{}{}".format(count, code), content))
    field = {"float32": "float_val", "float64": "double_val", "int32": "int_val",
             "uint8": "int_val", "int8": "int_val", "int64": "int64_val",
             "bool": "bool_val"}[dtype]
    listed = list(getattr(tensor, field))
    if not listed:
        return [0] * count
    if len(listed) < count:  # TF repeats the last value to fill the shape
        listed += [listed[-1]] * (count - len(listed))
    return listed[:count]


def attr_value(value):  # noqa: PLR0911  (one return per AttrValue kind)
    """AttrValue proto -> JSON-able Python value."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return value.s.decode("utf-8", "replace")
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return [int(dim.size) for dim in value.shape.dim]
    if kind == "tensor":
        return tensor_summary(value.tensor)
    if kind == "list":
        listed = value.list
        for field in ("i", "f", "s", "type", "b"):
            items = list(getattr(listed, field))
            if items:
                if field == "s":
                    return [item.decode("utf-8", "replace") for item in items]
                if field == "type":
                    return [dtype_name(item) for item in items]
                return items
        if listed.shape:
            return [[int(dim.size) for dim in shape.dim] for shape in listed.shape]
        return []
    return None
