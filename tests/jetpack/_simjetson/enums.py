"""TensorRT enums, built per version with only the members that version has."""

import enum

from . import surface


class PybindEnum(enum.IntEnum):
    """Prints like a pybind11 enum ("DataType.FLOAT"), which Python 3.11's IntEnum does not."""

    def __str__(self):
        return "{}.{}".format(type(self).__name__, self.name)


class Severity(PybindEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


def severity_enum(version):
    """5.0.x documents no VERBOSE (yaml Logger 5.0/5.1 note); everything later has it."""
    if version[:2] == (5, 0):
        return PybindEnum("Severity",
                            [(m.name, m.value) for m in Severity if m.name != "VERBOSE"])
    return Severity


# name -> value (distinct; the doubles only compare flags with each other)
_BUILDER_FLAGS = {
    "FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "STRICT_TYPES": 4, "REFIT": 5,
    "DISABLE_TIMING_CACHE": 6, "TF32": 7, "OBEY_PRECISION_CONSTRAINTS": 10,
    "PREFER_PRECISION_CONSTRAINTS": 11, "VERSION_COMPATIBLE": 15, "BF16": 17,
}
# Flags outside the quick_matrix: added in 8.0 (DISABLE_TIMING_CACHE, TF32) and 8.2
# (OBEY/PREFER_PRECISION_CONSTRAINTS, see notes_on_tags in the reference); the precision
# constraints go with weak typing in 11.0 (the reference's BuilderFlag.FP16 11.x note).
_FLAG_SINCE = {"DISABLE_TIMING_CACHE": (8, 0), "TF32": (8, 0),
               "OBEY_PRECISION_CONSTRAINTS": (8, 2), "PREFER_PRECISION_CONSTRAINTS": (8, 2)}
_FLAG_UNTIL = {"OBEY_PRECISION_CONSTRAINTS": (11, 0), "PREFER_PRECISION_CONSTRAINTS": (11, 0)}


def _members_in(enum_name, candidates, column):
    return [(name, value) for name, value in candidates.items()
            if surface.status("{}.{}".format(enum_name, name), column) != surface.ABSENT]


def make_enums(version, column):
    """All enum types of one TensorRT version, keyed by their trt.<Name>."""
    flags = {name: value for name, value in _BUILDER_FLAGS.items()
             if _FLAG_SINCE.get(name, (0, 0)) <= version[:2] < _FLAG_UNTIL.get(name, (99, 0))}
    data_types = [("FLOAT", 0), ("HALF", 1), ("INT8", 2), ("INT32", 3)]
    if version[0] >= 7:
        data_types.append(("BOOL", 4))
    # Values as in NvInfer.h: 10.x EXPLICIT_BATCH = 0, STRONGLY_TYPED = 1; 11 STRONGLY_TYPED
    # = 0 (the reference's NetworkDefinitionCreationFlag.STRONGLY_TYPED cites).
    creation_flags = {"EXPLICIT_BATCH": 0}
    if version[0] < 10:
        creation_flags["EXPLICIT_PRECISION"] = 1
    else:
        creation_flags["STRONGLY_TYPED"] = 1 if version[0] == 10 else 0
    enums = {
        "DataType": PybindEnum("DataType", data_types),
        "UffInputOrder": PybindEnum("UffInputOrder", [("NCHW", 0), ("NHWC", 1), ("NC", 2)]),
        "BuilderFlag": PybindEnum("BuilderFlag", _members_in("BuilderFlag", flags, column)),
        "DeviceType": PybindEnum("DeviceType", [("GPU", 0), ("DLA", 1)]),
        "MemoryPoolType": PybindEnum("MemoryPoolType", _members_in(
            "MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2,
                               "DLA_GLOBAL_DRAM": 3}, column)),
        "NetworkDefinitionCreationFlag": PybindEnum(
            "NetworkDefinitionCreationFlag",
            _members_in("NetworkDefinitionCreationFlag", creation_flags, column)),
        "TensorIOMode": PybindEnum("TensorIOMode", [("NONE", 0), ("INPUT", 1), ("OUTPUT", 2)]),
    }
    return {name: value for name, value in enums.items()
            if surface.status(name, column) != surface.ABSENT}
