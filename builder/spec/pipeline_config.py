"""Read the anchor settings from an Object Detection API pipeline.config (protobuf text).

Only the few fields the SSD recipe needs are read, so the object_detection package
(and its compiled protos) is not needed on the device. Unknown fields are skipped.
The graph's own anchors are what the builder uses (builder/graph/anchors.py); these
settings are checked against them, to catch a pipeline_config of another model.
"""

import collections
import re

from ..errors import UserError

_TOKEN = re.compile(r"""\s*(?:(\#[^\n]*)|([{}:;,\[\]])|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
                    r"""|([^\s{}:;,\[\]"'#]+))""")

AnchorSettings = collections.namedtuple(
    "AnchorSettings",
    "generator min_scale max_scale aspect_ratios num_layers reduce_boxes_in_lowest_layer "
    "num_classes image_size scales",
)
AnchorSettings.__doc__ = """``generator``: SSD_GENERATOR or MULTISCALE_GENERATOR; min_scale,
max_scale, reduce_boxes_in_lowest_layer and scales are those of ssd_anchor_generator (None,
None, False, [] for the multiscale one); num_classes counts the background."""

SSD_GENERATOR = "ssd_anchor_generator"
MULTISCALE_GENERATOR = "multiscale_anchor_generator"  # FPN models
# Defaults of ssd_anchor_generator.proto / multiscale_anchor_generator.proto when a field is
# absent.
PROTO_DEFAULTS = {"min_scale": 0.2, "max_scale": 0.95, "num_layers": 6,
                  "reduce_boxes_in_lowest_layer": True, "min_level": 3, "max_level": 7}


def _tokens(text, path):
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                return
            near = text[position:position + 30]
            raise UserError("{}: cannot read the protobuf text near {!r}. Check the file is "
                            "the model's pipeline.config".format(path, near))
        position = match.end()
        comment, punct, string, word = match.groups()
        if comment is not None:
            continue
        yield punct or string or word


def parse(text, path):
    """Protobuf text -> nested dict: field -> list of values (str) or dicts."""
    root = collections.OrderedDict()
    stack = [root]
    tokens = list(_tokens(text, path))
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "}":
            if len(stack) == 1:
                raise UserError("{}: unbalanced '}}'. Check the file is the model's "
                                "pipeline.config".format(path))
            stack.pop()
            continue
        if token in (";", ","):
            continue
        key = token
        if index < len(tokens) and tokens[index] == ":":
            index += 1
        if index < len(tokens) and tokens[index] == "{":
            index += 1
            child = collections.OrderedDict()
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
            continue
        if index >= len(tokens):
            raise UserError("{}: field '{}' has no value. Check the file is the model's "
                            "pipeline.config".format(path, key))
        stack[-1].setdefault(key, []).append(tokens[index].strip("\"'"))
        index += 1
    if len(stack) != 1:
        raise UserError("{}: a '{{' is never closed. Check the file is the model's "
                        "pipeline.config".format(path))
    return root


def _find(tree, key):
    """The first block named ``key`` anywhere in ``tree`` (depth first), or None."""
    for name, values in tree.items():
        for value in values:
            if not isinstance(value, dict):
                continue
            if name == key:
                return value
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _number(block, key, path, cast):
    values = block.get(key)
    if not values:
        return None
    try:
        return cast(values[-1])
    except ValueError:
        raise UserError("{}: {} is {!r}, not a number. Fix the pipeline.config".format(
            path, key, values[-1])) from None


def _numbers(block, key, path):
    """Every value of a repeated float field (empty when absent)."""
    try:
        return [float(value) for value in block.get(key, [])]
    except ValueError:
        raise UserError("{}: {} has a value that is not a number ({}). Fix the "
                        "pipeline.config".format(path, key, block[key])) from None


def read_anchor_settings(path):
    """AnchorSettings from the pipeline.config at ``path`` (UserError if it has none)."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except OSError as error:
        raise UserError("cannot read the pipeline config {}: {}. Check the model's "
                        "'pipeline_config' key in the catalog".format(path, error)) from error
    tree = parse(text, path)
    ssd = _find(tree, "ssd") or {}
    resizer = _find(ssd, "fixed_shape_resizer") if ssd else None
    classes = _number(ssd, "num_classes", path, int) if ssd else None
    image_size = None
    if resizer is not None:
        height = _number(resizer, "height", path, int)
        width = _number(resizer, "width", path, int)
        if height and width:
            image_size = (height, width)
    common = {
        # pipeline.config counts classes without the background.
        "num_classes": None if classes is None else classes + 1,
        "image_size": image_size,
    }
    anchor = _find(tree, SSD_GENERATOR)
    if anchor is None:
        multiscale = _find(tree, MULTISCALE_GENERATOR)
        if multiscale is None:
            raise UserError("{}: no {} block (nor {}). The 'pipeline_config' key must name the "
                            "pipeline.config of an SSD model (model.ssd.anchor_generator)"
                            .format(path, SSD_GENERATOR, MULTISCALE_GENERATOR))
        return _multiscale_settings(multiscale, path, common)
    ratios = _numbers(anchor, "aspect_ratios", path)
    if not ratios:
        raise UserError("{}: ssd_anchor_generator has no aspect_ratios. Add them (e.g. 1.0, "
                        "2.0, 0.5, 3.0, 0.3333) as the model was trained".format(path))
    reduce_values = anchor.get("reduce_boxes_in_lowest_layer")
    return AnchorSettings(
        generator=SSD_GENERATOR,
        min_scale=_setting(anchor, "min_scale", path, float),
        max_scale=_setting(anchor, "max_scale", path, float),
        aspect_ratios=ratios,
        num_layers=_setting(anchor, "num_layers", path, int),
        reduce_boxes_in_lowest_layer=(PROTO_DEFAULTS["reduce_boxes_in_lowest_layer"]
                                      if not reduce_values else reduce_values[-1] == "true"),
        # Explicit per-layer scales: min_scale and max_scale are then not used.
        scales=_numbers(anchor, "scales", path),
        **common
    )


def _setting(block, key, path, cast):
    value = _number(block, key, path, cast)
    return PROTO_DEFAULTS[key] if value is None else value


def _multiscale_settings(block, path, common):
    """multiscale_anchor_generator (FPN): one layer per level from min_level to max_level."""
    levels = _setting(block, "max_level", path, int) - _setting(block, "min_level", path, int)
    return AnchorSettings(
        generator=MULTISCALE_GENERATOR, min_scale=None, max_scale=None,
        aspect_ratios=_numbers(block, "aspect_ratios", path), num_layers=levels + 1,
        reduce_boxes_in_lowest_layer=False, scales=[], **common)
