"""Process-wide state of the simulated JetPack: which TensorRT this device runs."""

from . import device, versions

_STATE = {}


class Context:
    def __init__(self, description, generation):
        self.device = description
        self.version_string = str(description["tensorrt_version"])
        self.version = versions.parse_version(self.version_string)
        self.column = versions.column_for(self.version_string)
        self.generation = generation
        self.plugins_initialised = False


def _tree_generation():
    try:
        from ._generation import GENERATION  # noqa: PLC0415  (written by layout.py)
    except ImportError:
        return None
    return GENERATION


def get():
    """The Context, created on first use; ImportError when tree and device disagree."""
    if "context" not in _STATE:
        description = device.load_device()
        wanted = versions.generation_for(description["tensorrt_version"])
        tree = _tree_generation()
        if tree is not None and tree != wanted:
            raise ImportError(
                "SIMULATED JetPack: this dist-packages tree is {} but {} says tensorrt_version "
                "{} (needs {})".format(tree, device.device_file(),
                                       description["tensorrt_version"], wanted))
        _STATE["context"] = Context(description, wanted)
    return _STATE["context"]


def require_uff():
    if get().version[0] >= 10:
        raise ImportError("No module named 'uff' (JetPack 6 and later / TensorRT 10 and later "
                          "ship no UFF converter)")
