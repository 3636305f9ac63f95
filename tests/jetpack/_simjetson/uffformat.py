"""The SIMULATED .uff file: a marker line, then JSON describing the converted graph.

Real .uff files are protobufs (uff.proto MetaGraph); ours keeps what the simulated
UffParser needs: nodes with op, inputs, attributes (plugin fields), and for constants
their shape, dtype, byte size and (when small) values.
"""

import json

MAGIC = "SIMULATED UFF graph (uff test double); not loadable by real TensorRT"
FORMAT = "simjetson-uff/1"


class UffFormatError(ValueError):
    pass


def dumps(graph):
    return (MAGIC + "\n" + json.dumps(graph, indent=1, sort_keys=True) + "\n").encode()


def loads(data):
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    first, _, rest = text.partition("\n")
    if first.strip() != MAGIC:
        raise UffFormatError("not a SIMULATED UFF file")
    try:
        graph = json.loads(rest)
    except ValueError as exc:
        raise UffFormatError("corrupt SIMULATED UFF file: {}".format(exc)) from None
    if graph.get("format") != FORMAT:
        raise UffFormatError("unknown SIMULATED UFF format {!r}".format(graph.get("format")))
    return graph


def node_tensor_name(reference):
    """'node:1' -> ('node', 1); '^node' (control) -> ('node', None); 'node' -> ('node', 0)."""
    if reference.startswith("^"):
        return reference[1:], None
    name, _, port = reference.partition(":")
    return name, int(port) if port else 0


# plugin field type -> the uff.proto Data member the real text dump shows
_TEXT_CODES = {"int": "i", "float": "d", "bool": "b", "str": "s", "ilist": "i_list",
               "flist": "d_list", "dtype": "dtype"}


def to_text(graph):
    """Human dump in the spirit of the real converter's .pbtxt (ids, inputs, operation, fields)."""
    lines = ["# " + MAGIC, "version: 1", 'descriptor_core_version: "{}"'.format(
        graph.get("uff_version", "")), "graphs {", '  id: "main"']
    for node in graph["nodes"]:
        lines.append("  nodes {")
        lines.append('    id: "{}"'.format(node["name"]))
        lines.extend('    inputs: "{}"'.format(ref) for ref in node["inputs"])
        lines.append('    operation: "{}"'.format(node["op"]))
        types = node.get("field_types", {})
        for key in sorted(node.get("attrs", {})):
            value = json.dumps(node["attrs"][key])
            if key in types:  # typed plugin field, as the real dump shows it (i, d, i_list..)
                value = "{{ {}: {} }}".format(_TEXT_CODES.get(types[key], types[key]), value)
            lines.append("    fields {{ key: \"{}\" value: {} }}".format(key, value))
        if "const" in node:
            const = node["const"]
            lines.append("    # const shape={} dtype={} nbytes={}".format(
                const["shape"], const["dtype"], const["nbytes"]))
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
