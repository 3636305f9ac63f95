"""TensorRT version arithmetic: generations and API columns.

Self-contained (stdlib only, no package imports) because tests/jetpack/layout.py loads
this file directly by path.
"""

GENERATIONS = ("trt5_6", "trt7", "trt8_0", "trt8_4", "trt10", "trt11")

# Column labels of the quick_matrix in reference/tensorrt-python-api.yaml, in order.
COLUMNS = ("5.0/5.1", "6.0", "7.0/7.1", "8.0", "8.2", "8.4", "8.5", "8.6", "10.0-10.3",
           "11.x")


def parse_version(text):
    """'8.2.1.8' -> (8, 2, 1, 8). Raises ValueError naming the bad text."""
    parts = str(text).strip().split(".")
    try:
        numbers = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(
            "tensorrt_version {!r} is not a dotted number like '8.2.1.8'".format(text)
        ) from None
    if len(numbers) < 2:
        raise ValueError("tensorrt_version {!r} needs at least MAJOR.MINOR".format(text))
    return numbers


def generation_for(tensorrt_version):
    """The dist-packages tree ("trt5_6", "trt7", "trt8_0", "trt8_4", "trt10", "trt11") of a
    version."""
    major, minor = parse_version(tensorrt_version)[:2]
    if major in (5, 6):
        return "trt5_6"
    if major == 7:
        return "trt7"
    if major == 8 and minor <= 3:
        return "trt8_0"
    if major == 8:
        return "trt8_4"
    if major == 10:
        return "trt10"
    if major == 11:
        return "trt11"
    raise ValueError(
        "tensorrt_version {!r}: no test double for TensorRT {} (supported: 5, 6, 7, 8, 10, "
        "11)".format(tensorrt_version, major))


def column_for(tensorrt_version):  # noqa: PLR0911  (one return per column)
    """The quick_matrix column whose API surface a version has."""
    major, minor = parse_version(tensorrt_version)[:2]
    if major == 5:
        return "5.0/5.1"
    if major == 6:
        return "6.0"
    if major == 7:
        return "7.0/7.1"
    if major == 8:
        if minor <= 1:
            return "8.0"
        if minor <= 3:
            return "8.2"
        return {4: "8.4", 5: "8.5"}.get(minor, "8.6")
    if major == 10:
        return "10.0-10.3"
    if major == 11:
        return "11.x"
    generation_for(tensorrt_version)  # raises the unsupported-version message
    raise AssertionError("unreachable")
