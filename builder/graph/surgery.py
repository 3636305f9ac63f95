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

num_classes, input_order, feature map shapes, the input size and the anchor settings
(minSize, maxSize, aspectRatios: builder/graph/anchors.py) come from the graph; catalog values
are checked against them (see ``transform_graph_def``). The GridAnchor_TRT node is written
only when its boxes reproduce the graph's anchors; where they cannot (anchors.py says why),
the UFF path refuses the model and names the ONNX path.
"""

from ..atomic import write_text
from ..errors import UserError
from ..graph import anchors
from ..graph import edit as graph_edit
from ..graph import plugins as ssd_plugins
from ..graph import ssd as ssd_graph
from ..graph.tfcompat import graph_def_to_text, new_graph_def, read_graph_def
from ..platform.detect import FLATTEN_CONCAT_FIELDS_FROM, version_tuple
from ..spec import pipeline_config
from ..spec.catalog import AUTO
from ..trt import enginepath

OUTPUT_NODES = [ssd_plugins.NMS]
OP_RENAMES = {"AddV2": "Add", "FusedBatchNormV3": "FusedBatchNorm"}
AUTO_FIX = "Change it in the catalog to {} (or write 'auto')"


class SurgeryResult(object):
    """The transformed graph and what was derived on the way.

    ``graph_def``: the transformed GraphDef (None when the UFF path is refused: nothing to
    convert); ``output_nodes``: ["NMS"]; ``derived``: the values used for the plugin nodes
    plus ``sources`` (where each came from; input_order and nms_inputs None when refused);
    ``warnings``: list of text; ``problems``: catalog/graph disagreements (empty unless
    the transform ran with ``strict=False``); ``uff_refusal``: why the UFF path cannot build
    this model (GridAnchor_TRT cannot reproduce its anchors), None when it can (with
    ``strict=False`` only: a strict transform raises instead).
    """

    def __init__(self, model, graph_def, derived, *, warnings, problems, uff_refusal):
        self.model = model
        self.graph_def = graph_def
        self.output_nodes = list(OUTPUT_NODES)
        self.derived = derived
        self.warnings = warnings
        self.problems = problems
        self.uff_refusal = uff_refusal


def trt_numbers(trt_version):
    """The parsed TensorRT version of '8.2.1.8' / 7 / None (None: unknown)."""
    if trt_version is None:
        return None
    numbers = version_tuple(trt_version)
    if not numbers:
        raise UserError("TensorRT version {!r} is not a version number such as 8.2.1. Pass "
                        "the device's TensorRT version (e.g. from dpkg tensorrt)"
                        .format(trt_version))
    return numbers


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


def _same_value(catalog_value, graph_value):
    """A catalog number (or list of numbers) equals the graph's within anchors.SAME_VALUE."""
    if isinstance(graph_value, list):
        return len(catalog_value) == len(graph_value) and all(
            abs(a - b) <= anchors.SAME_VALUE for a, b in zip(catalog_value, graph_value))
    return abs(catalog_value - graph_value) <= anchors.SAME_VALUE


def _anchor_settings(spec, layout, derivation, checks):
    """minSize, maxSize, aspectRatios (+ sources) of the GridAnchor node: the graph's own.

    A catalog value other than 'auto' must equal the graph's (hand-edited MODEL_SPECS values
    that do not match the trained model are the classic silent failure of the UFF path); a
    pipeline_config must agree with the graph too.
    """
    min_size, max_size, ratios = derivation.grid_anchor_parameters
    settings = {"min_size": min_size, "max_size": max_size, "aspect_ratios": ratios}
    sources = dict.fromkeys(settings, derivation.source)
    for key, graph_value in settings.items():
        catalog_value = getattr(spec, key)
        if catalog_value == AUTO:
            continue
        if _same_value(catalog_value, graph_value):
            sources[key] += " (the catalog agrees)"
        else:
            checks.disagree(key, catalog_value, graph_value,
                            "the graph (anchors of {})".format(derivation.node),
                            AUTO_FIX.format(graph_value))
    if getattr(spec, "pipeline_config", None):
        where = "pipeline.config ({})".format(spec.pipeline_config)
        if _check_pipeline_config(spec.pipeline_config, where, layout, derivation, checks):
            for key in sources:
                sources[key] += "; {} agrees".format(where)
    settings["sources"] = sources
    return settings


def _check_pipeline_config(path, where, layout, derivation, checks):
    """Whether the pipeline.config at ``path`` agrees with the graph; lists where it does not."""
    pipeline = pipeline_config.read_anchor_settings(path)
    before = len(checks.problems)
    fix = "Check that pipeline_config belongs to this graph"
    said = []
    if pipeline.generator == pipeline_config.SSD_GENERATOR:
        # Multiscale (FPN) settings are not the SSD reading of anchors.py: only the layer
        # count, classes and input size are compared for those.
        said.append(("aspect_ratios", pipeline.aspect_ratios, derivation.aspect_ratios))
        if not pipeline.scales:  # explicit scales replace min_scale/max_scale
            said[:0] = [("min_scale", pipeline.min_scale, derivation.min_scale),
                        ("max_scale", pipeline.max_scale, derivation.max_scale)]
    for key, value, graph_value in said:
        if not _same_value(value, graph_value):
            checks.add("{} says {} {} but the graph has {} (anchors of {}). {}".format(
                where, key, value, graph_value, derivation.node, fix))
    if pipeline.generator == pipeline_config.SSD_GENERATOR and \
            pipeline.reduce_boxes_in_lowest_layer != derivation.reduce_boxes_in_lowest_layer:
        checks.add("{} says reduce_boxes_in_lowest_layer {} but the graph's first layer is {}"
                   "reduced. {}".format(where, str(pipeline.reduce_boxes_in_lowest_layer).lower(),
                                        "" if derivation.reduce_boxes_in_lowest_layer else "not ",
                                        fix))
    if pipeline.num_layers != layout.num_layers:
        checks.add("{} says num_layers {} but the graph has {} box predictors. {}".format(
            where, pipeline.num_layers, layout.num_layers, fix))
    if pipeline.num_classes is not None and pipeline.num_classes != layout.num_classes:
        checks.add("{} says num_classes {} (+1 background = {}) but the graph predicts {} "
                   "classes. {}".format(where, pipeline.num_classes - 1, pipeline.num_classes,
                                        layout.num_classes, fix))
    if pipeline.image_size is not None and list(pipeline.image_size) != layout.input_dims[1:]:
        checks.add("{} resizes to {}x{} but the graph's input is {}x{}. {}".format(
            where, pipeline.image_size[0], pipeline.image_size[1], layout.input_dims[1],
            layout.input_dims[2], fix))
    return len(checks.problems) == before


def _compare_with_catalog(spec, derived, checks):
    if spec.num_classes != "auto" and spec.num_classes != derived["num_classes"]:
        checks.disagree("num_classes", spec.num_classes, derived["num_classes"],
                        "the graph (class predictor channels / anchors per location, "
                        "background included)", AUTO_FIX.format(derived["num_classes"]))
    if spec.input_order != "auto" and derived["input_order"] is not None and \
            list(spec.input_order) != derived["input_order"]:
        checks.disagree("input_order", list(spec.input_order), derived["input_order"],
                        "the graph (NMS inputs {})".format(", ".join(derived["nms_inputs"])),
                        AUTO_FIX.format(derived["input_order"]))
    if spec.input_dims != "auto" and list(spec.input_dims) != derived["input_dims"]:
        checks.disagree("input_dims", list(spec.input_dims), derived["input_dims"],
                        "the graph ({})".format(derived["sources"]["input_dims"]),
                        AUTO_FIX.format(derived["input_dims"]))
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


def _uff_refusal(spec, grid, scores):
    """Why the UFF path cannot build ``spec`` (anchors.GridAnchorCheck ``grid``,
    ssd.ScoreConversion ``scores``), or None."""
    if grid.refusal is not None:
        return "GridAnchor_TRT cannot reproduce the anchors of graph {} ({}): {}".format(
            spec.graph, grid.derivation.node, grid.refusal)
    # NMS_TRT turns the raw logits into scores with a sigmoid (confSigmoid) or not at all.
    if scores.converter != "sigmoid":
        return ("NMS_TRT converts class logits with a sigmoid, but graph {} converts them "
                "with {} ({})".format(spec.graph, scores.converter,
                                      scores.sources["score_converter"]))
    if scores.logit_scale != 1.0:
        return ("NMS_TRT cannot divide the class logits by {:g} before its sigmoid as graph "
                "{} does ({})".format(scores.logit_scale, spec.graph,
                                      scores.sources["logit_scale"]))
    return None


def uff_refusal_problem(model, uff_refusal):
    """The refusal as a problem line: the model, why, and the way out."""
    return "model '{}': the UFF path cannot build it: {}. {}".format(
        model, uff_refusal, enginepath.ONNX_ROUTE)


def transform_graph_def(graph_def, spec, trt_version=None, strict=True):
    """Transform a copy of ``graph_def`` for ``spec`` (a catalog ModelSpec).

    ``trt_version``: the device's TensorRT version ('8.2.1.8'); FlattenConcat gets
    axis/ignoreBatch from 7 on. None: assume >= 7 and say so in ``warnings``.
    ``strict``: raise UserError when the catalog disagrees with the graph or when
    GridAnchor_TRT cannot reproduce the graph's anchors (always for ``convert``); False keeps
    the graph's values, lists the disagreements in ``result.problems`` and says why UFF is
    refused in ``result.uff_refusal`` (also a problem when the catalog forces engine_path
    uff) (for ``inspect`` and ``check``).
    """
    path = spec.graph
    layout = ssd_graph.analyze(graph_def, path)
    checks = _Checks(spec.name)
    grid = anchors.read_grid_anchor_check(graph_def, path, layout)
    settings = _anchor_settings(spec, layout, grid.derivation, checks)
    uff_refusal = _uff_refusal(spec, grid, ssd_graph.score_conversion(graph_def, path))
    warnings = []
    numbers = trt_numbers(trt_version)
    if numbers is None:
        warnings.append("TensorRT version unknown: FlattenConcat nodes carry axis=1, "
                        "ignoreBatch=0 (the TensorRT >= {} form)".format(
                            FLATTEN_CONCAT_FIELDS_FROM[0]))
    with_axis_fields = numbers is None or (numbers + (0,))[:2] >= FLATTEN_CONCAT_FIELDS_FROM
    sources = dict(layout.sources)
    sources.update(settings["sources"])
    sources["variance"] = "catalog"
    sources["anchor_layer_scales"] = grid.derivation.source
    sources["grid_anchor_max_error"] = ("GridAnchor_TRT's formula (builder/graph/anchors.py) "
                                        "vs the graph's anchors, at most {:g} accepted".format(
                                            anchors.GRID_ANCHOR_TOLERANCE))
    derived = {
        "num_classes": layout.num_classes,
        "input_order": None,
        "num_layers": layout.num_layers,
        "feature_map_shapes": list(layout.feature_map_shapes),
        "anchors_per_location": list(layout.anchors_per_location),
        "input_dims": list(layout.input_dims),
        "anchors": layout.anchors,
        "min_size": settings["min_size"],
        "max_size": settings["max_size"],
        "aspect_ratios": settings["aspect_ratios"],
        "anchor_layer_scales": list(grid.derivation.layer_scales),
        "grid_anchor_max_error": grid.max_error,
        "uff_refusal": uff_refusal,
        "variance": list(spec.variance),
        "nms_inputs": None,
        "flatten_concat_axis_fields": with_axis_fields,
        "sources": sources,
    }
    if uff_refusal and (strict or getattr(spec, "engine_path", AUTO) == enginepath.UFF):
        checks.problems.append(uff_refusal_problem(spec.name, uff_refusal))
    transformed, notes = None, []
    if uff_refusal is None:  # no UFF graph for a model the UFF path cannot build
        transformed = new_graph_def()
        transformed.CopyFrom(graph_def)
        input_order, nms_inputs, notes = _rewrite(transformed, spec, layout, settings,
                                                  with_axis_fields)
        derived.update(input_order=input_order, nms_inputs=nms_inputs)
        sources["input_order"] = "graph: NMS inputs {}".format(", ".join(nms_inputs))
    _compare_with_catalog(spec, derived, checks)
    if strict and checks.problems:
        raise UserError("\n".join(checks.problems))
    return SurgeryResult(spec.name, transformed, derived, warnings=warnings + notes,
                         problems=checks.problems, uff_refusal=uff_refusal)


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
