"""Import a plugin or module file of the repository by path (plugins/ and library/ are not
packages): the unit tests call their pure functions without an Ansible run."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load(path, name):
    """The module at REPO/path, registered in sys.modules as ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
