"""SIMULATED uff package (JetPack's UFF converter) for TensorRT 5..8.6 test devices."""

from _simjetson import context as _context
from _simjetson import uff_convert as _convert

_context.require_uff()

__version__ = _convert.uff_version_for(_context.get().version)
UffException = _convert.UffException


def from_tensorflow(graphdef, output_nodes=None, preprocessor=None, **kwargs):
    """Convert a tf GraphDef to (SIMULATED) UFF; returns the serialized bytes."""
    return _convert.convert(graphdef, output_nodes or [], _context.get().version,
                            preprocessor=preprocessor, **kwargs)


def from_tensorflow_frozen_model(frozen_file, output_nodes=None, preprocessor=None, **kwargs):
    """Same as from_tensorflow, reading a frozen .pb file first."""
    graphdef = _convert.load_frozen_graph(frozen_file)
    return from_tensorflow(graphdef, output_nodes, preprocessor=preprocessor, **kwargs)
