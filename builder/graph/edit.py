"""Generic edits of a TensorFlow GraphDef, on the proto itself (no tf.Graph import).

The same operations the reference recipe called on JetPack's graphsurgeon
(remove, forward_inputs, collapse_namespaces), with the same semantics: node order is
kept, plugin nodes are appended at the end, and a collapsed namespace's external inputs
are gathered in the order the graph's nodes use them (that order becomes the order of
the NMS node's inputs, hence ``input_order``).
"""

import collections


def node_name(input_name):
    """'^a/b:1' -> 'a/b' (the node an input string refers to)."""
    return input_name.lstrip("^").split(":")[0]


def is_control(input_name):
    return input_name.startswith("^")


def nodes_by_name(graph_def):
    return collections.OrderedDict((node.name, node) for node in graph_def.node)


def consumers(graph_def):
    """node name -> names of the nodes that use it (data or control input)."""
    result = collections.defaultdict(list)
    for node in graph_def.node:
        for input_name in node.input:
            result[node_name(input_name)].append(node.name)
    return result


def _replace_nodes(graph_def, kept):
    """Keep only ``kept`` (NodeDefs, in order) in ``graph_def``."""
    kept = list(kept)
    del graph_def.node[:]
    graph_def.node.extend(kept)


def remove_with_exclusive_inputs(graph_def, names):
    """Remove ``names`` and every node that only they (transitively) use.

    Control inputs on removed nodes disappear from the remaining nodes.
    """
    by_name = nodes_by_name(graph_def)
    users = consumers(graph_def)
    removed = set()
    pending = [name for name in names if name in by_name]
    while pending:
        name = pending.pop()
        if name in removed:
            continue
        removed.add(name)
        for input_name in by_name[name].input:
            source = node_name(input_name)
            if source in by_name and all(user in removed for user in users[source]):
                pending.append(source)
    kept = []
    for node in graph_def.node:
        if node.name in removed:
            continue
        inputs = [i for i in node.input if node_name(i) not in removed]
        del node.input[:]
        node.input.extend(inputs)
        kept.append(node)
    _replace_nodes(graph_def, kept)
    return removed


def forward_inputs(graph_def, names):
    """Remove pass-through nodes (Identity, Squeeze...) and wire their data inputs through.

    A node with a control input is kept (graphsurgeon does the same): forwarding it would
    drop the ordering it exists for. Returns the names actually forwarded.
    """
    by_name = nodes_by_name(graph_def)
    forwarded = set(
        name for name in names
        if name in by_name and not any(is_control(i) for i in by_name[name].input)
    )

    def resolve(input_name):
        """Replacement input strings for one input string."""
        source = node_name(input_name)
        if source not in forwarded:
            return [input_name]
        data_inputs = list(by_name[source].input)
        if is_control(input_name):
            return ["^" + node_name(i) for r in data_inputs for i in resolve(r)]
        return [i for r in data_inputs for i in resolve(r)]

    kept = []
    for node in graph_def.node:
        if node.name in forwarded:
            continue
        inputs = [i for input_name in node.input for i in resolve(input_name)]
        del node.input[:]
        node.input.extend(inputs)
        kept.append(node)
    _replace_nodes(graph_def, kept)
    return forwarded


def _namespace_of(name, namespaces):
    """The longest namespace (path prefix by whole components) containing ``name``."""
    parts = name.split("/")
    best = None
    for namespace in namespaces:
        depth = namespace.count("/") + 1
        if "/".join(parts[:depth]) == namespace and (
                best is None or depth > best.count("/") + 1):
            best = namespace
    return best


def collapse_namespaces(graph_def, plugin_for_namespace):
    """Replace every node under a namespace by that namespace's plugin NodeDef.

    ``plugin_for_namespace``: namespace -> NodeDef (several namespaces may share one).
    Each plugin's inputs are the external inputs of its nodes, unique, in graph order;
    other nodes' inputs into a namespace are renamed to its plugin (no duplicates).
    """
    namespaces = list(plugin_for_namespace)

    def plugin_of(name):
        namespace = _namespace_of(node_name(name), namespaces)
        return None if namespace is None else plugin_for_namespace[namespace]

    kept = []
    for node in graph_def.node:
        plugin = plugin_of(node.name)
        if plugin is not None:
            for input_name in node.input:
                source_plugin = plugin_of(input_name)
                if source_plugin is None:
                    wanted = input_name
                elif source_plugin.name == plugin.name:
                    continue  # internal edge of the namespace
                else:
                    wanted = source_plugin.name
                if wanted not in plugin.input:
                    plugin.input.append(wanted)
            continue
        inputs = []
        for input_name in node.input:
            source_plugin = plugin_of(input_name)
            wanted = input_name if source_plugin is None else source_plugin.name
            if source_plugin is None or wanted not in inputs:
                inputs.append(wanted)
        del node.input[:]
        node.input.extend(inputs)
        kept.append(node)
    seen = set()
    for plugin in plugin_for_namespace.values():
        if plugin.name not in seen:
            seen.add(plugin.name)
            kept.append(plugin)
    _replace_nodes(graph_def, kept)


def rename_ops(graph_def, new_op_for):
    """Change node ops in place (e.g. AddV2 -> Add). Returns {old op: count}."""
    counts = collections.Counter()
    for node in graph_def.node:
        if node.op in new_op_for:
            counts[node.op] += 1
            node.op = new_op_for[node.op]
    return dict(counts)


def keep_reachable(graph_def, outputs):
    """Drop every node the ``outputs`` do not (transitively) depend on."""
    by_name = nodes_by_name(graph_def)
    needed = set()
    pending = list(outputs)
    while pending:
        name = pending.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        pending.extend(node_name(i) for i in by_name[name].input)
    _replace_nodes(graph_def, [node for node in graph_def.node if node.name in needed])


def dangling_inputs(graph_def):
    """[(node, input)] for every input that names no node of the graph."""
    names = set(node.name for node in graph_def.node)
    return [(node.name, input_name) for node in graph_def.node
            for input_name in node.input if node_name(input_name) not in names]
