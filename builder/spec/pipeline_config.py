"""Read the anchor settings from an Object Detection API pipeline.config (protobuf text).

Only the few fields the SSD recipe needs are read, so the object_detection package
(and its compiled protos) is not needed on the device. Unknown fields are skipped.
"""

import collections
import re

from ..errors import UserError

_TOKEN = re.compile(r"""\s*(?:(\#[^\n]*)|([{}:;,\[\]])|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
                    r"""|([^\s{}:;,\[\]"'#]+))""")

AnchorSettings = collections.namedtuple(
    "AnchorSettings",
    "min_scale max_scale aspect_ratios num_layers reduce_boxes_in_lowest_layer num_classes "
    "image_size",
)

# Defaults of ssd_anchor_generator.proto when a field is absent.
PROTO_DEFAULTS = {"min_scale": 0.2, "max_scale": 0.95, "num_layers": 6,
                  "reduce_boxes_in_lowest_layer": True}


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


def read_anchor_settings(path):
    """AnchorSettings from the pipeline.config at ``path`` (UserError if it has none)."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except OSError as error:
        raise UserError("cannot read the pipeline config {}: {}. Check the model's "
                        "'pipeline_config' key in the catalog".format(path, error)) from error
    tree = parse(text, path)
    anchor = _find(tree, "ssd_anchor_generator")
    if anchor is None:
        raise UserError("{}: no ssd_anchor_generator block. The 'pipeline_config' key must name "
                        "the pipeline.config of an SSD model (model.ssd.anchor_generator)"
                        .format(path))
    ratios = [float(value) for value in anchor.get("aspect_ratios", [])]
    if not ratios:
        raise UserError("{}: ssd_anchor_generator has no aspect_ratios. Add them (e.g. 1.0, "
                        "2.0, 0.5, 3.0, 0.3333) as the model was trained".format(path))

    def setting(key, cast):
        value = _number(anchor, key, path, cast)
        return PROTO_DEFAULTS[key] if value is None else value

    ssd = _find(tree, "ssd") or {}
    resizer = _find(ssd, "fixed_shape_resizer") if ssd else None
    classes = _number(ssd, "num_classes", path, int) if ssd else None
    image_size = None
    if resizer is not None:
        height = _number(resizer, "height", path, int)
        width = _number(resizer, "width", path, int)
        if height and width:
            image_size = (height, width)
    reduce_values = anchor.get("reduce_boxes_in_lowest_layer")
    return AnchorSettings(
        min_scale=setting("min_scale", float),
        max_scale=setting("max_scale", float),
        aspect_ratios=ratios,
        num_layers=setting("num_layers", int),
        reduce_boxes_in_lowest_layer=(PROTO_DEFAULTS["reduce_boxes_in_lowest_layer"]
                                      if not reduce_values else reduce_values[-1] == "true"),
        # pipeline.config counts classes without the background.
        num_classes=None if classes is None else classes + 1,
        image_size=image_size,
    )
