"""SSD graph surgery: a frozen TF Object Detection API graph -> the graph the uff converter wants.

Produces the plugin nodes of the reference recipe (jkjung-avt/tensorrt_demos
ssd/build_engine.py, after NVIDIA's sampleUffSSD config.py) with the builder's own code:

- Assert nodes (and what only they use) removed, Identity nodes forwarded;
- image_tensor / ToFloat / Cast / Preprocessor -> ``Input`` placeholder [1, 3, H, W];
- MultipleGridAnchorGenerator -> GridAnchor_TRT, the anchor concat -> ``concat_priorbox``;
- Postprocessor -> ``NMS`` (NMS_TRT); concat / concat_1 -> ``concat_box_loc`` /
  ``concat_box_conf`` (FlattenConcat_TRT);
- AddV2 -> Add, FusedBatchNormV3 -> FusedBatchNorm (TF 1.15 exports; uff knows only these);
- the Squeeze between concat_box_loc and NMS forwarded; a const ``AnchorInput`` for a
  GridAnchor node that has no input; everything NMS does not use dropped.

num_classes, input_order, feature map shapes and the input size come from the graph;
catalog values are checked against them (see ``transform_graph_def``).
"""

from ..atomic import write_text
from ..errors import UserError
from ..graph import edit as graph_edit
from ..graph import plugins as ssd_plugins
from ..graph import ssd as ssd_graph
from ..graph.tfcompat import graph_def_to_text, new_graph_def, read_graph_def
from ..spec import pipeline_config

OUTPUT_NODES = [ssd_plugins.NMS]
DEFAULT_ASPECT_RATIOS = [1.0, 2.0, 0.5, 3.0, 0.33]  # the reference recipe's
OP_RENAMES = {"AddV2": "Add", "FusedBatchNormV3": "FusedBatchNorm"}
FIRST_LAYER_ANCHORS = 3  # GridAnchor_TRT: 3 boxes on the first map (reduce_boxes_in_lowest_layer)
RATIO_TOLERANCE = 0.005  # 0.33 and 0.3333 are the same ratio


class SurgeryResult(object):
    """The transformed graph and what was derived on the way.

    ``graph_def``: the transformed GraphDef; ``output_nodes``: ["NMS"]; ``derived``: the
    values used for the plugin nodes plus ``sources`` (where each came from);
    ``warnings``: list of text; ``problems``: catalog/graph disagreements (empty unless
    the transform ran with ``strict=False``).
    """

    def __init__(self, model, graph_def, derived, warnings, problems):
        self.model = model
        self.graph_def = graph_def
        self.output_nodes = list(OUTPUT_NODES)
        self.derived = derived
        self.warnings = warnings
        self.problems = problems


def trt_major(trt_version):
    """Major TensorRT version from '8.2.1.8' / 7 / None (None: unknown)."""
    if trt_version is None:
        return None
    try:
        return int(str(trt_version).split(".")[0])
    except ValueError:
        raise UserError("TensorRT version {!r} is not a version number such as 8.2.1. Pass "
                        "the device's TensorRT version (e.g. from dpkg tensorrt)"
                        .format(trt_version)) from None


def _same_ratios(first, second):
    return len(first) == len(second) and all(
        abs(a - b) <= RATIO_TOLERANCE for a, b in zip(first, second))


class _Checks(object):
    """Collects catalog/graph disagreements as user-facing lines."""

    def __init__(self, model):
        self.model = model
        self.problems = []

    def disagree(self, key, catalog_value, other_value, other_source, fix):
        self.problems.append(
            "model '{}': {} is {} in the catalog but {} in {}. {}".format(
                self.model, key, catalog_value, other_value, other_source, fix))

    def add(self, text):
        self.problems.append("model '{}': {}".format(self.model, text))


def _anchor_settings(spec, layout, checks):
    """min_size, max_size, aspect_ratios (+ sources) from the catalog and pipeline.config."""
    settings = {"min_size": spec.min_size, "max_size": spec.max_size}
    sources = {"min_size": "catalog", "max_size": "catalog"}
    pipeline = None
    if getattr(spec, "pipeline_config", None):
        pipeline = pipeline_config.read_anchor_settings(spec.pipeline_config)
        where = "pipeline.config ({})".format(spec.pipeline_config)
        for key, value in (("min_size", pipeline.min_scale), ("max_size", pipeline.max_scale)):
            if settings[key] is not None and abs(settings[key] - value) > 1e-6:
                checks.disagree(key, settings[key], value, where + " ssd_anchor_generator",
                                "Make the catalog's {} equal the pipeline.config's {} (the "
                                "model was trained with it)".format(
                                    key, key.replace("size", "scale")))
            else:
                settings[key] = value
                sources[key] = where
        if pipeline.num_layers != layout.num_layers:
            checks.add("{} says num_layers {} but the graph has {} box predictors. Check that "
                       "pipeline_config belongs to this graph".format(
                           where, pipeline.num_layers, layout.num_layers))
        if pipeline.num_classes is not None and pipeline.num_classes != layout.num_classes:
            checks.add("{} says num_classes {} (+1 background = {}) but the graph predicts {} "
                       "classes. Check that pipeline_config belongs to this graph".format(
                           where, pipeline.num_classes - 1, pipeline.num_classes,
                           layout.num_classes))
        if pipeline.image_size is not None and list(pipeline.image_size) != layout.input_dims[1:]:
            checks.add("{} resizes to {}x{} but the graph's input is {}x{}. Check that "
                       "pipeline_config belongs to this graph".format(
                           where, pipeline.image_size[0], pipeline.image_size[1],
                           layout.input_dims[1], layout.input_dims[2]))
    if spec.aspect_ratios is not None:
        ratios, sources["aspect_ratios"] = list(spec.aspect_ratios), "catalog"
        if pipeline is not None and not _same_ratios(ratios, pipeline.aspect_ratios):
            checks.disagree("aspect_ratios", ratios, pipeline.aspect_ratios, "pipeline.config",
                            "Remove aspect_ratios from the catalog to use the pipeline.config's")
    elif pipeline is not None:
        ratios, sources["aspect_ratios"] = list(pipeline.aspect_ratios), "pipeline.config"
    else:
        ratios, sources["aspect_ratios"] = list(DEFAULT_ASPECT_RATIOS), "default"
    settings["aspect_ratios"] = ratios
    settings["sources"] = sources
    return settings


def _check_anchor_counts(layout, ratios, ratio_source, checks):
    """GridAnchor_TRT makes 3 boxes on map 0 and len(aspect_ratios) + 1 on the others."""
    counts = layout.anchors_per_location
    if counts[0] != FIRST_LAYER_ANCHORS:
        checks.add("the graph has {} anchors per location on the first feature map; "
                   "GridAnchor_TRT makes {} there. Train with "
                   "reduce_boxes_in_lowest_layer: true".format(counts[0], FIRST_LAYER_ANCHORS))
    expected = len(ratios) + 1
    wrong = sorted(set(count for count in counts[1:] if count != expected))
    if wrong:
        checks.add("the graph has {} anchors per location on feature maps 1-{} but the {} "
                   "aspect_ratios {} make {} (one per ratio + 1). Set aspect_ratios to the "
                   "model's {} ratios (pipeline.config ssd_anchor_generator), or name the "
                   "pipeline.config with 'pipeline_config'".format(
                       "/".join(str(w) for w in wrong), len(counts) - 1, ratio_source, ratios,
                       expected, wrong[0] - 1))


def _compare_with_catalog(spec, derived, nms_inputs, checks):
    auto_fix = "Change it in the catalog to {} (or write 'auto')"
    if spec.num_classes != "auto" and spec.num_classes != derived["num_classes"]:
        checks.disagree("num_classes", spec.num_classes, derived["num_classes"],
                        "the graph (class predictor channels / anchors per location, "
                        "background included)", auto_fix.format(derived["num_classes"]))
    if spec.input_order != "auto" and list(spec.input_order) != derived["input_order"]:
        checks.disagree("input_order", list(spec.input_order), derived["input_order"],
                        "the graph (NMS inputs {})".format(", ".join(nms_inputs)),
                        auto_fix.format(derived["input_order"]))
    if spec.input_dims != "auto" and list(spec.input_dims) != derived["input_dims"]:
        checks.disagree("input_dims", list(spec.input_dims), derived["input_dims"],
                        "the graph ({})".format(derived["sources"]["input_dims"]),
                        auto_fix.format(derived["input_dims"]))
    if spec.feature_map_shapes is not None and \
            list(spec.feature_map_shapes) != derived["feature_map_shapes"]:
        checks.disagree("feature_map_shapes", list(spec.feature_map_shapes),
                        derived["feature_map_shapes"], "the graph (box predictor inputs)",
                        "Set feature_map_shapes: {} or remove the key".format(
                            derived["feature_map_shapes"]))


def _collapse_map(plugins):
    """Namespace -> plugin node, the reference recipe's namespace_plugin_map."""
    return {
        "MultipleGridAnchorGenerator": plugins["grid_anchor"],
        "Postprocessor": plugins["nms"],
        "Preprocessor": plugins["input"],
        "ToFloat": plugins["input"],
        "Cast": plugins["input"],  # TF 1.15 exports
        "image_tensor": plugins["input"],
        "MultipleGridAnchorGenerator/Concatenate": plugins["priorbox"],  # older exports
        "Concatenate": plugins["priorbox"],  # newer exports
        "concat": plugins["box_loc"],
        "concat_1": plugins["box_conf"],
    }


def _resolve_role(by_name, input_name):
    """'loc' / 'conf' / 'prior' for an NMS input, looking through Squeeze and Identity."""
    roles = {ssd_plugins.CONCAT_BOX_LOC: "loc", ssd_plugins.CONCAT_BOX_CONF: "conf",
             ssd_plugins.CONCAT_PRIORBOX: "prior"}
    node = by_name.get(graph_edit.node_name(input_name))
    while node is not None and node.name not in roles and \
            node.op in ("Squeeze", "Identity") and node.input:
        node = by_name.get(graph_edit.node_name(node.input[0]))
    return None if node is None else roles.get(node.name)


def derive_input_order(graph_def, path):
    """[position of loc, of conf, of prior] among the NMS node's inputs."""
    by_name = graph_edit.nodes_by_name(graph_def)
    inputs = list(by_name[ssd_plugins.NMS].input)
    roles = [_resolve_role(by_name, name) for name in inputs]
    if sorted(role or "" for role in roles) != ["conf", "loc", "prior"]:
        raise UserError(
            "graph {}: after collapsing Postprocessor into NMS its inputs are {}; expected "
            "exactly the box locations (concat), the class scores (concat_1) and the anchors "
            "(MultipleGridAnchorGenerator / Concatenate). The export's Postprocessor is not "
            "the standard SSD one".format(path, inputs))
    return [roles.index("loc"), roles.index("conf"), roles.index("prior")], inputs


def _forward_squeeze_into_nms(graph_def):
    """NMS reads concat_box_loc directly (recipe: avoids uff's isPlugin assertion)."""
    by_name = graph_edit.nodes_by_name(graph_def)
    nms = by_name[ssd_plugins.NMS]
    for index, input_name in enumerate(nms.input):
        node = by_name.get(graph_edit.node_name(input_name))
        if node is not None and node.op == "Squeeze" and \
                _resolve_role(by_name, node.input[0]) == "loc":
            nms.input[index] = node.input[0]


def _rewrite(graph_def, spec, layout, settings, with_axis_fields):
    """Apply the recipe to ``graph_def`` in place; returns (input_order, nms inputs, notes)."""
    path = spec.graph
    notes = []
    asserts = [node.name for node in graph_def.node if node.op == "Assert"]
    graph_edit.remove_with_exclusive_inputs(graph_def, asserts)
    graph_edit.forward_inputs(graph_def,
                              [node.name for node in graph_def.node if node.op == "Identity"])
    plugins = {
        "input": ssd_plugins.input_placeholder(layout.input_dims),
        "grid_anchor": ssd_plugins.grid_anchor(settings["min_size"], settings["max_size"],
                                               settings["aspect_ratios"], spec.variance,
                                               layout.feature_map_shapes),
        "nms": ssd_plugins.nms(layout.num_classes, [],
                               confidence_threshold=spec.confidence_threshold,
                               nms_threshold=spec.nms_threshold, top_k=spec.top_k,
                               keep_top_k=spec.keep_top_k),
        "priorbox": ssd_plugins.priorbox_concat(),
        "box_loc": ssd_plugins.flatten_concat(ssd_plugins.CONCAT_BOX_LOC, with_axis_fields),
        "box_conf": ssd_plugins.flatten_concat(ssd_plugins.CONCAT_BOX_CONF, with_axis_fields),
    }
    graph_edit.collapse_namespaces(graph_def, _collapse_map(plugins))
    renamed = graph_edit.rename_ops(graph_def, OP_RENAMES)
    if renamed:
        notes.append("renamed ops for uff: " + ", ".join(
            "{} x{} -> {}".format(op, count, OP_RENAMES[op])
            for op, count in sorted(renamed.items())))
    # The graph holds copies of the plugin NodeDefs now: edit those.
    by_name = graph_edit.nodes_by_name(graph_def)
    del by_name[ssd_plugins.INPUT].input[:]  # a placeholder has no inputs
    nms = by_name[ssd_plugins.NMS]
    kept = [name for name in nms.input if graph_edit.node_name(name) != ssd_plugins.INPUT]
    del nms.input[:]
    nms.input.extend(kept)
    input_order, nms_inputs = derive_input_order(graph_def, path)
    ssd_plugins.set_input_order(nms, input_order)
    _forward_squeeze_into_nms(graph_def)
    grid_anchor = by_name[ssd_plugins.GRID_ANCHOR]
    if not grid_anchor.input:
        graph_def.node.extend([ssd_plugins.anchor_input()])
        grid_anchor.input.append(ssd_plugins.ANCHOR_INPUT)
        notes.append("GridAnchor had no input: added the AnchorInput const")
    graph_edit.keep_reachable(graph_def, OUTPUT_NODES)
    dangling = graph_edit.dangling_inputs(graph_def)
    if dangling:
        raise RuntimeError("surgery left inputs naming no node: {}".format(dangling))
    return input_order, nms_inputs, notes


def transform_graph_def(graph_def, spec, trt_version=None, strict=True):
    """Transform a copy of ``graph_def`` for ``spec`` (a catalog ModelSpec).

    ``trt_version``: the device's TensorRT version ('8.2.1.8'); FlattenConcat gets
    axis/ignoreBatch from 7 on. None: assume >= 7 and say so in ``warnings``.
    ``strict``: raise UserError when the catalog disagrees with the graph (always for
    ``convert``); False keeps the graph's values and lists the disagreements in
    ``result.problems`` (for ``inspect``).
    """
    path = spec.graph
    layout = ssd_graph.analyze(graph_def, path)
    checks = _Checks(spec.name)
    settings = _anchor_settings(spec, layout, checks)
    _check_anchor_counts(layout, settings["aspect_ratios"],
                         settings["sources"]["aspect_ratios"], checks)
    warnings = []
    major = trt_major(trt_version)
    if major is None:
        warnings.append("TensorRT version unknown: FlattenConcat nodes carry axis=1, "
                        "ignoreBatch=0 (the TensorRT >= 7 form)")
    with_axis_fields = major is None or major >= 7
    transformed = new_graph_def()
    transformed.CopyFrom(graph_def)
    input_order, nms_inputs, notes = _rewrite(transformed, spec, layout, settings,
                                              with_axis_fields)
    sources = dict(layout.sources)
    sources.update(settings["sources"])
    sources["input_order"] = "graph: NMS inputs {}".format(", ".join(nms_inputs))
    sources["variance"] = "catalog"
    derived = {
        "num_classes": layout.num_classes,
        "input_order": input_order,
        "num_layers": layout.num_layers,
        "feature_map_shapes": list(layout.feature_map_shapes),
        "anchors_per_location": list(layout.anchors_per_location),
        "input_dims": list(layout.input_dims),
        "anchors": layout.anchors,
        "min_size": settings["min_size"],
        "max_size": settings["max_size"],
        "aspect_ratios": settings["aspect_ratios"],
        "variance": list(spec.variance),
        "nms_inputs": nms_inputs,
        "flatten_concat_axis_fields": with_axis_fields,
        "sources": sources,
    }
    _compare_with_catalog(spec, derived, nms_inputs, checks)
    if checks.problems and strict:
        raise UserError("\n".join(checks.problems))
    return SurgeryResult(spec.name, transformed, derived, warnings + notes, checks.problems)


def transform_model(spec, trt_version=None, strict=True):
    """Read ``spec.graph`` and transform it (see ``transform_graph_def``)."""
    return transform_graph_def(read_graph_def(spec.graph), spec, trt_version, strict)


def write_pbtxt(result, path):
    """Write the transformed graph as protobuf text, atomically."""
    header = ("# Transformed graph of model '{}' (builder graph surgery). Output node: {}.\n"
              "# input_order {}, num_classes {}\n").format(
                  result.model, ", ".join(result.output_nodes),
                  result.derived["input_order"], result.derived["num_classes"])
    write_text(path, header + graph_def_to_text(result.graph_def))
