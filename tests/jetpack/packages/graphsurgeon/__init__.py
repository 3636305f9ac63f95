"""SIMULATED graphsurgeon (JetPack's TensorFlow graph editing helper), TensorRT 5..8.6."""

from _simjetson import context as _context
from _simjetson.surgery import DynamicGraph, create_node, create_plugin_node

_context.require_uff()

__all__ = ["DynamicGraph", "create_node", "create_plugin_node"]
