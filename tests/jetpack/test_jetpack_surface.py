"""The API surface of every simulated version matches the reference quick_matrix."""

import functools
import json
import re
import sys
from pathlib import Path

import pytest
from jetpack_harness import last_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simjetson import surface, versions  # noqa: E402

# Our cited fact file, kept in the repository: this test never skips for want of it.
REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "tensorrt-python-api.yaml"
VERSION_OF_COLUMN = {"5.0/5.1": "5.1.6", "6.0": "6.0.1", "7.0/7.1": "7.1.3",
                     "8.0": "8.0.1.6", "8.2": "8.2.1.8", "8.4": "8.4.1.5", "8.5": "8.5.2.2",
                     "8.6": "8.6.2", "10.0-10.3": "10.3.0", "11.x": "11.4.1"}

PROBE = r"""
import json, warnings
import tensorrt as trt
logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
rows = json.loads(input())

def present(name):
    owner, _, member = name.partition(".")
    if not hasattr(trt, owner):
        return False
    return not member or hasattr(getattr(trt, owner), member)

builder = trt.Builder(logger)
config = builder.create_builder_config() if hasattr(builder, "create_builder_config") else None
header = {"bindings": [{"name": "Input", "shape": [3, 2, 2], "dtype": "float32",
                        "is_input": True}], "max_batch_size": 1, "implicit_batch": True,
          "plugins": []}
engine = trt.ICudaEngine(b"", header, logger)
context = engine.create_execution_context()
PROBES = {
    "Builder.max_batch_size": lambda: builder.max_batch_size,
    "Builder.build_engine": lambda: builder.build_engine(builder.create_network(), config),
    "IBuilderConfig.max_workspace_size": lambda: config.max_workspace_size,
    "ICudaEngine.get_binding_shape": lambda: engine.get_binding_shape(0),
    "ICudaEngine.get_binding_name": lambda: engine.get_binding_name(0),
    "ICudaEngine.binding_is_input": lambda: engine.binding_is_input(0),
    "ICudaEngine.max_batch_size": lambda: engine.max_batch_size,
    "IExecutionContext.execute": lambda: context.execute(1, [0]),
    "IExecutionContext.execute_async": lambda: context.execute_async(1, [0], 0),
    "Builder.max_workspace_size": lambda: builder.max_workspace_size,
    "ICudaEngine.num_bindings": lambda: engine.num_bindings,
    "ICudaEngine.device_memory_size": lambda: engine.device_memory_size,
    "IBuilderConfig.int8_calibrator": lambda: config.int8_calibrator,
}
report = {}
for name in rows:
    entry = {"present": present(name), "warnings": []}
    if entry["present"] and name in PROBES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            PROBES[name]()
        entry["warnings"] = [str(w.message) for w in caught
                             if issubclass(w.category, DeprecationWarning)]
    report[name] = entry
print(json.dumps(report))
"""


@functools.lru_cache(maxsize=1)
def _load_reference():
    import yaml  # noqa: PLC0415

    return yaml.safe_load(REFERENCE.read_text())


def reference_matrix():
    return _load_reference()


def test_matrix_copy_matches_the_reference():
    quick = dict(reference_matrix()["meta"]["quick_matrix"])
    quick.pop("legend")
    assert {name: str(row) for name, row in quick.items()} == surface.MATRIX


def _reference_warning(name, column):
    """The DeprecationWarning text the reference gives for a D(warn) cell (getter first)."""
    entry = reference_matrix()["surface"][name]["by_version"][column]
    return re.findall(r'DeprecationWarning\("([^"]+)"\)', entry["warning"])[0]


@pytest.mark.parametrize("column", versions.COLUMNS)
def test_surface_of_column(gen, column):
    rows = list(surface.MATRIX)
    result = gen.run(PROBE, VERSION_OF_COLUMN[column], input=json.dumps(rows))
    report = last_json(result)
    mismatches = []
    for name in rows:
        cell = surface.cells(name)[column]
        expected_present = cell != "-"
        if report[name]["present"] != expected_present:
            mismatches.append("{}: present={} but matrix says {!r}".format(
                name, report[name]["present"], cell))
            continue
        warned = report[name]["warnings"]
        if cell == "D(warn)":
            if _reference_warning(name, column) not in warned:
                mismatches.append("{}: expected DeprecationWarning, got {}".format(name, warned))
        elif warned:
            mismatches.append("{}: unexpected DeprecationWarning {}".format(name, warned))
    assert not mismatches, "\n".join(mismatches)


ONNX_API = Path(__file__).resolve().parents[2] / "docs" / "reference" / "tensorrt-onnx-api.yaml"


def _onnx_api_rows():
    import yaml  # noqa: PLC0415

    return {name: [cell.strip() for cell in str(row).split("|")]
            for name, row in yaml.safe_load(ONNX_API.read_text())["meta"]["quick_matrix"].items()}


def test_onnx_api_rows_agree_with_the_doubles_table():
    """Rows the doubles also tabulate (surface.EXTRA / MATRIX) say the same there."""
    for name, row in _onnx_api_rows().items():
        tabulated = surface.cells(name)
        if tabulated is not None:
            assert [tabulated[column] for column in versions.COLUMNS] == row, name


@pytest.mark.parametrize("column", versions.COLUMNS)
def test_onnx_api_surface_of_column(gen, column):
    rows = _onnx_api_rows()
    result = gen.run(PROBE, VERSION_OF_COLUMN[column], input=json.dumps(list(rows)))
    report = last_json(result)
    index = versions.COLUMNS.index(column)
    wrong = ["{}: present={} but the ONNX API reference says {!r}".format(
        name, report[name]["present"], row[index])
        for name, row in rows.items() if report[name]["present"] != (row[index] != "-")]
    assert not wrong, "\n".join(wrong)
