"""The reference recipe, run with the graphsurgeon test double, vs the builder's surgery.

The recipe (jkjung-avt/tensorrt_demos ssd/build_engine.py add_plugin, TensorRT >= 7
branch) is restated below as the steps it performs; it runs in a subprocess with the
trt7 JetPack double on sys.path. Plugin nodes must match: op, inputs (NMS inputs seen
through Squeeze), and fields. Field names are compared without graphsurgeon's
``_u_<kind>`` suffix and without ``dtype`` so the comparison holds for both encodings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphs"))
from generated import graphs_dir  # noqa: E402

from builder.graph import surgery  # noqa: E402
from builder.spec.catalog import load_catalog  # noqa: E402

JETPACK = Path(__file__).resolve().parents[1] / "jetpack"
PLUGIN_NAMES = ("Input", "MultipleGridAnchorGenerator", "NMS", "concat_priorbox",
                "concat_box_loc", "concat_box_conf")

RECIPE = textwrap.dedent('''
    import json, sys
    import numpy as np
    import graphsurgeon as gs

    graph_path, spec = sys.argv[1], json.loads(sys.argv[2])
    graph = gs.DynamicGraph(graph_path)
    graph.remove(graph.find_nodes_by_op("Assert"), remove_exclusive_dependencies=True)
    graph.forward_inputs(graph.find_nodes_by_op("Identity"))
    Input = gs.create_plugin_node(name="Input", op="Placeholder",
                                  shape=(1,) + tuple(spec["input_dims"]))
    PriorBox = gs.create_plugin_node(
        name="MultipleGridAnchorGenerator", op="GridAnchor_TRT", minSize=spec["min_size"],
        maxSize=spec["max_size"], aspectRatios=spec["aspect_ratios"],
        variance=spec["variance"], featureMapShapes=spec["feature_map_shapes"],
        numLayers=spec["num_layers"])
    NMS = gs.create_plugin_node(
        name="NMS", op="NMS_TRT", shareLocation=1, varianceEncodedInTarget=0,
        backgroundLabelId=0, confidenceThreshold=spec["confidence_threshold"],
        nmsThreshold=spec["nms_threshold"], topK=spec["top_k"], keepTopK=spec["keep_top_k"],
        numClasses=spec["num_classes"], inputOrder=spec["input_order"], confSigmoid=1,
        isNormalized=1)
    concat_priorbox = gs.create_node("concat_priorbox", op="ConcatV2", axis=2)
    concat_box_loc = gs.create_plugin_node("concat_box_loc", op="FlattenConcat_TRT",
                                           axis=1, ignoreBatch=0)
    concat_box_conf = gs.create_plugin_node("concat_box_conf", op="FlattenConcat_TRT",
                                            axis=1, ignoreBatch=0)
    graph.collapse_namespaces({
        "MultipleGridAnchorGenerator": PriorBox, "Postprocessor": NMS, "Preprocessor": Input,
        "ToFloat": Input, "Cast": Input, "image_tensor": Input,
        "MultipleGridAnchorGenerator/Concatenate": concat_priorbox,
        "Concatenate": concat_priorbox, "concat": concat_box_loc, "concat_1": concat_box_conf})
    for node in graph.find_nodes_by_op("AddV2"):
        node.op = "Add"
    for node in graph.find_nodes_by_op("FusedBatchNormV3"):
        node.op = "FusedBatchNorm"
    nodes = {n.name: n for n in graph.as_graph_def().node}
    out = {}
    for name in %r:
        node = nodes[name]
        inputs = [i for i in node.input if i.split(":")[0] != "Input" and i != "image_tensor:0"]
        if name == "NMS":  # the recipe's Squeeze forwarding, seen through
            inputs = [nodes[i].input[0] if nodes[i].op == "Squeeze" else i for i in inputs]
        attrs = {}
        for key in node.attr:
            value = node.attr[key]
            kind = value.WhichOneof("value")
            attrs[key] = (list(getattr(value.list, "i")) or list(getattr(value.list, "f"))
                          if kind == "list" else
                          [d.size for d in value.shape.dim] if kind == "shape"
                          else getattr(value, kind))
        out[name] = {"op": node.op, "inputs": inputs, "attrs": attrs}
    if not out["MultipleGridAnchorGenerator"]["inputs"]:
        out["MultipleGridAnchorGenerator"]["inputs"] = ["AnchorInput"]
    print(json.dumps(out))
''' % (PLUGIN_NAMES,))


def _normalise(attrs):
    """Drop dtype and graphsurgeon's _u_<kind> suffixes; round floats."""
    result = {}
    for key, value in attrs.items():
        if key == "dtype":
            continue
        field = re.sub(r"_u_(int|float|ilist|flist|str|bool)$", "", key)
        if isinstance(value, list):
            result[field] = [round(v, 5) if isinstance(v, float) else v for v in value]
        elif isinstance(value, float):
            result[field] = round(value, 5)
        else:
            result[field] = value
    return result


def _ours(result):
    out = {}
    for node in result.graph_def.node:
        if node.name not in PLUGIN_NAMES:
            continue
        attrs = {}
        for key in node.attr:
            value = node.attr[key]
            kind = value.WhichOneof("value")
            if kind == "list":
                attrs[key] = list(value.list.i) or list(value.list.f)
            elif kind == "shape":
                attrs[key] = [d.size for d in value.shape.dim]
            else:
                attrs[key] = getattr(value, kind)
        out[node.name] = {"op": node.op, "inputs": list(node.input), "attrs": _normalise(attrs)}
    return out


@pytest.fixture(scope="module")
def trt7_site():
    layout_file = JETPACK / "layout.py"
    if not layout_file.is_file():
        pytest.skip("tests/jetpack/layout.py (graphsurgeon double) not available yet")
    sys.path.insert(0, str(JETPACK))
    try:
        import layout  # noqa: PLC0415
    finally:
        sys.path.remove(str(JETPACK))
    return layout.site_packages_dir("trt7")


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco",
                                  "ssd_mobilenet_v2_tf115", "ssd_mobilenet_v2_256"])
def test_reference_recipe_gives_the_same_plugin_nodes(tmp_path, trt7_site, name):
    spec = load_catalog(str(graphs_dir() / "models.yml")).models[name]
    ours = surgery.transform_model(spec, trt_version="7.1.3")
    recipe_spec = {key: ours.derived[key] for key in (
        "input_dims", "min_size", "max_size", "aspect_ratios", "variance",
        "feature_map_shapes", "num_layers", "num_classes", "input_order")}
    recipe_spec.update(confidence_threshold=spec.confidence_threshold,
                       nms_threshold=spec.nms_threshold, top_k=spec.top_k,
                       keep_top_k=spec.keep_top_k)
    device = tmp_path / "device.json"
    device.write_text(json.dumps({
        "name": "sim", "profile": "xavier", "module": "jetson-agx-xavier", "soc": "tegra194",
        "compute_capability": "7.2", "memory_mib": 16000, "dla_cores": 2, "l4t": "32.4.3",
        "tensorrt_version": "7.1.3.0", "build_seconds": 0, "infer_ms": 1}))
    env = dict(os.environ, PYTHONPATH=str(trt7_site), SIMJETSON_DEVICE=str(device),
               TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-c", RECIPE, spec.graph, json.dumps(recipe_spec)],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    recipe = json.loads(completed.stdout.strip().splitlines()[-1])
    for node in recipe.values():
        node["attrs"] = _normalise(node["attrs"])
    assert _ours(ours) == recipe
