"""The build key: one sha256 naming "this engine", shared by the controller and the device.

Two builds with the same key produce interchangeable engines, so the store can skip a build
whose key it already holds. Stdlib only (the controller imports it without PyYAML).
"""

import hashlib
import json

# Bump when the set or the meaning of the fields below changes: every key changes with it.
# 2: input_dims defaults to "auto"; engine_path and box_decoder. 3: min_size, max_size and
# aspect_ratios default to "auto", and the UFF path's GridAnchor node takes the graph's own
# anchor values (builder/graph/anchors.py), where engines before took the catalog's (or the
# recipe's default ratio 0.33 for a model trained with 0.3333).
KEY_SCHEMA = 3

# ModelSpec fields that change the engine (they become GridAnchor / NMS plugin parameters
# or the input binding; engine_path picks UFF or ONNX, and with the platform_id, which
# names the TensorRT version, it tells which one 'auto' became; box_decoder changes the
# ONNX graph). Not included: name, graph path and engine file name (where
# things live, not what is built), the sha256 pin (the graph's actual checksum is
# included instead), pipeline_config path (its checksum is included, see below).
SPEC_FIELDS = (
    "num_classes", "min_size", "max_size", "input_order", "input_dims", "aspect_ratios",
    "feature_map_shapes", "variance", "confidence_threshold", "nms_threshold", "top_k",
    "keep_top_k", "engine_path", "box_decoder",
)
FLOAT_FIELDS = ("min_size", "max_size", "confidence_threshold", "nms_threshold")
FLOAT_LIST_FIELDS = ("aspect_ratios", "variance")

# Build options that change the engine: precision (kernels), workspace (tactics TensorRT
# may choose), max batch (implicit batch dimension), DLA core (where layers run).
OPTION_FIELDS = ("precision", "workspace_mib", "max_batch", "dla_core")


def _spec_dict(spec):
    return spec.as_dict() if hasattr(spec, "as_dict") else dict(spec)


def _canonical_spec(spec):
    values = _spec_dict(spec)
    missing = [field for field in SPEC_FIELDS if field not in values]
    if missing:
        raise ValueError("build_key: spec lacks {}".format(", ".join(missing)))
    canonical = {}
    for field in SPEC_FIELDS:
        value = values[field]
        # 1 and 1.0 must give the same key (YAML and JSON round trips may change the type).
        # "auto" stays text: the value is the graph's, and the graph's checksum is in the key.
        if value in (None, "auto"):
            pass
        elif field in FLOAT_FIELDS:
            value = float(value)
        elif field in FLOAT_LIST_FIELDS:
            value = [float(item) for item in value]
        canonical[field] = value
    if values.get("pipeline_config"):
        # The conversion checks the graph against this file: its content is an input of
        # the build. Its path is not.
        digest = values.get("pipeline_config_sha256")
        if not digest:
            raise ValueError("build_key: spec has pipeline_config but no "
                             "pipeline_config_sha256 (load the catalog with check_graphs=True)")
        canonical["pipeline_config_sha256"] = digest.lower()
    return canonical


def _canonical_options(options):
    missing = [field for field in OPTION_FIELDS if field not in options]
    if missing:
        raise ValueError("build_key: options lack {}".format(", ".join(missing)))
    canonical = {field: options[field] for field in OPTION_FIELDS}
    canonical["precision"] = str(canonical["precision"]).lower()
    return canonical


def model_inputs(graph_sha256, spec):
    """The model's part of the key. The model's name is not in it (a renamed model keeps its
    engines), so two models with equal inputs would build the same engine."""
    return {"graph_sha256": graph_sha256.lower(), "spec": _canonical_spec(spec)}


def build_key_payload(platform_id, graph_sha256, spec, options, builder_version):
    """The canonical JSON text that ``build_key`` hashes (useful in manifests and debugging)."""
    payload = dict(model_inputs(graph_sha256, spec), key_schema=KEY_SCHEMA,
                   platform_id=platform_id, options=_canonical_options(options),
                   builder_version=builder_version)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def build_key(platform_id, graph_sha256, spec, options, builder_version):
    """sha256 hex over platform_id, graph checksum, SPEC_FIELDS, OPTION_FIELDS, builder version.

    ``spec``: a ModelSpec or its ``as_dict()``; ``options``: a dict with exactly the
    OPTION_FIELDS that matter (extra keys are ignored, missing ones raise ValueError).
    """
    text = build_key_payload(platform_id, graph_sha256, spec, options, builder_version)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
