"""SIMULATED graphsurgeon: DynamicGraph over tf.compat.v1 GraphDef protos.

Reproduces the behaviour the reference SSD recipe relies on (JetPack's graphsurgeon,
TensorRT 5..8.6): collapse_namespaces keeps the external inputs of every collapsed node in
graph order, mapped to the plugin node that replaced them; remove() leaves consumers'
input references alone; forward_inputs() splices a node's inputs into its consumers.
"""

import copy


def _tf():
    import tensorflow as tf  # noqa: PLC0415  (lazy: only node creation needs TensorFlow)

    return tf.compat.v1


def _is_ndarray(value):
    import numpy as np  # noqa: PLC0415  (lazy, like TensorFlow above)

    return isinstance(value, np.ndarray)


def _node_name(reference):
    return reference.lstrip("^").split(":")[0]


def _as_list(items):
    if items is None:
        return []
    if isinstance(items, (list, tuple, set)):
        return list(items)
    return [items]


# graphsurgeon.create_plugin_node suffixes each field with its kind so that the uff
# converter can turn it into a typed plugin field (the suffix is stripped there).
_PLUGIN_SUFFIX = {"int": "_u_int", "float": "_u_float", "ilist": "_u_ilist",
                  "flist": "_u_flist", "str": "_u_str"}


def _set_attr(node, key, value, tf, trt_plugin):  # noqa: PLR0912  (one branch per kind)
    """Store one keyword the way JetPack's graphsurgeon update_node does (same order of
    checks: a bool is an int there, so plugin bools become `_u_int`)."""

    def named(kind):
        return key + _PLUGIN_SUFFIX[kind] if trt_plugin else key

    if isinstance(value, tf.DType):
        node.attr[key].type = value.as_datatype_enum
    elif key == "shape":
        node.attr[key].shape.SetInParent()
        for size in value:
            node.attr[key].shape.dim.add(size=int(size))
    elif key == "inputs":
        for item in _as_list(value):
            if not isinstance(item, (str, tf.NodeDef)):
                raise TypeError("Input type unrecognized. Must be a tensorflow.NodeDef or a "
                                "string.")
            node.input.append(item if isinstance(item, str) else item.name)
    elif isinstance(value, int):
        node.attr[named("int")].i = value
    elif isinstance(value, float):
        node.attr[named("float")].f = value
    elif isinstance(value, list):
        if any(isinstance(item, float) for item in value):
            node.attr[named("flist")].list.f.extend(value)
        elif all(isinstance(item, int) for item in value):
            node.attr[named("ilist")].list.i.extend(value)
        else:
            raise TypeError("Only lists of floats or ints are currently supported.")
    elif isinstance(value, str):
        node.attr[named("str")].s = value.encode()
    elif _is_ndarray(value):
        node.attr[key].tensor.tensor_shape.CopyFrom(tf.TensorShape(value.shape).as_proto())
        node.attr[key].tensor.tensor_content = value.tobytes()
    else:
        raise TypeError("Type: {} unrecognized.".format(type(value)))


def create_node(name, op=None, trt_plugin=False, **kwargs):
    """A NodeDef named `name` (op defaults to the name) with attributes from keywords;
    `inputs=` takes node names or NodeDefs, `shape=` becomes a shape attribute."""
    tf = _tf()
    node = tf.NodeDef()
    node.name = name
    node.op = op or name
    for key, value in kwargs.items():
        _set_attr(node, key, value, tf, trt_plugin)
    return node


def create_plugin_node(name, op=None, **kwargs):
    """A TensorRT plugin node: fields named `<field>_u_<kind>` (int, float, ilist, flist,
    str), which the uff converter strips into typed plugin fields."""
    return create_node(name, op, trt_plugin=True, **kwargs)


class DynamicGraph:
    def __init__(self, graphdef=None):
        if graphdef is None:
            graphdef = _tf().GraphDef()
        elif isinstance(graphdef, str):
            tf = _tf()
            loaded = tf.GraphDef()
            with open(graphdef, "rb") as handle:
                loaded.ParseFromString(handle.read())
            graphdef = loaded
        self._internal_graphdef = copy.deepcopy(graphdef)

    # -- lookups -----------------------------------------------------------------------
    @property
    def node_map(self):
        return {node.name: node for node in self._internal_graphdef.node}

    def find_nodes_by_op(self, op):
        ops = set(_as_list(op))
        return [node for node in self._internal_graphdef.node if node.op in ops]

    def find_nodes_by_name(self, name):
        names = set(_as_list(name))
        return [node for node in self._internal_graphdef.node if node.name in names]

    def find_nodes_by_path(self, path):
        paths = _as_list(path)
        return [node for node in self._internal_graphdef.node
                if any(node.name == p or node.name.startswith(p.rstrip("/") + "/")
                       for p in paths)]

    def _consumers(self):
        consumers = {}
        for node in self._internal_graphdef.node:
            for reference in node.input:
                consumers.setdefault(_node_name(reference), []).append(node)
        return consumers

    @property
    def graph_outputs(self):
        consumed = self._consumers()
        return [node for node in self._internal_graphdef.node if node.name not in consumed]

    @property
    def graph_inputs(self):
        return [node for node in self._internal_graphdef.node if node.op == "Placeholder"]

    # -- edits ---------------------------------------------------------------------------
    def _resolve(self, nodes):
        names = []
        for item in _as_list(nodes):
            names.append(item if isinstance(item, str) else item.name)
        return names

    def _keep_only(self, predicate):
        kept = [node for node in self._internal_graphdef.node if predicate(node)]
        del self._internal_graphdef.node[:]
        self._internal_graphdef.node.extend(kept)

    def append(self, node):
        self._internal_graphdef.node.extend([node])

    def extend(self, nodes):
        self._internal_graphdef.node.extend(_as_list(nodes))

    def remove(self, nodes, remove_exclusive_dependencies=False):
        doomed = set(self._resolve(nodes))
        if remove_exclusive_dependencies:
            doomed |= self._exclusive_dependencies(doomed)
        self._keep_only(lambda node: node.name not in doomed)

    def _exclusive_dependencies(self, doomed):
        """Nodes every consumer of which is being removed (recursively)."""
        node_map = self.node_map
        consumers = self._consumers()
        found = set()
        frontier = list(doomed)
        while frontier:
            for reference in node_map[frontier.pop()].input:
                source = _node_name(reference)
                if source in doomed or source in found or source not in node_map:
                    continue
                if all(c.name in doomed or c.name in found for c in consumers[source]):
                    found.add(source)
                    frontier.append(source)
        return found

    def forward_inputs(self, nodes):
        forwarded = {name: list(self.node_map[name].input) for name in self._resolve(nodes)}
        for node in self._internal_graphdef.node:
            if node.name in forwarded:
                continue
            new_inputs = []
            for reference in node.input:
                new_inputs.extend(self._expand(reference, forwarded))
            del node.input[:]
            node.input.extend(new_inputs)
        self._keep_only(lambda node: node.name not in forwarded)

    def _expand(self, reference, forwarded, depth=0):
        name = _node_name(reference)
        if name not in forwarded or depth > len(forwarded):
            return [reference]
        expanded = []
        for inner in forwarded[name]:
            expanded.extend(self._expand(inner, forwarded, depth + 1))
        return expanded

    def collapse_namespaces(self, namespace_map, exclude_nodes=None, unique_inputs=True):
        excluded = set(self._resolve(exclude_nodes))
        namespaces = sorted(namespace_map, key=len, reverse=True)

        def plugin_for(name):
            if name in excluded:
                return None
            for namespace in namespaces:
                if name == namespace or name.startswith(namespace + "/"):
                    return namespace_map[namespace]
            return None

        def mapped(reference):
            plugin = plugin_for(_node_name(reference))
            return reference if plugin is None else plugin.name

        result, emitted = [], {}
        for node in self._internal_graphdef.node:
            plugin = plugin_for(node.name)
            if plugin is None:
                rewired = copy.deepcopy(node)
                del rewired.input[:]
                rewired.input.extend(mapped(ref) for ref in node.input)
                result.append(rewired)
                continue
            if plugin.name not in emitted:
                emitted[plugin.name] = copy.deepcopy(plugin)
                result.append(emitted[plugin.name])
            target = emitted[plugin.name]
            for reference in node.input:
                new_reference = mapped(reference)
                if _node_name(new_reference) == plugin.name:
                    continue  # internal to the collapsed namespace
                if unique_inputs and new_reference in target.input:
                    continue
                target.input.append(new_reference)
        del self._internal_graphdef.node[:]
        self._internal_graphdef.node.extend(result)

    def as_graph_def(self):
        return copy.deepcopy(self._internal_graphdef)

    def write(self, filename):
        with open(filename, "wb") as handle:
            handle.write(self._internal_graphdef.SerializeToString())
