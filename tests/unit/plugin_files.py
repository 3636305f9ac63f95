"""Import a plugin or module file of the repository by path (plugins/ and library/ are not
packages): the unit tests call their pure functions without an Ansible run."""

import base64
import functools
import importlib.util
import io
import re
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load(path, name):
    """The module at REPO/path, registered in sys.modules as ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def ansible_plugins():
    """Ansible's plugin loaders, set up once per test process as ansible-playbook sets them up
    (a second set-up only warns), with the repository's modules (library/) among them."""
    from ansible.plugins.loader import init_plugin_loader, module_loader  # noqa: PLC0415

    init_plugin_loader()
    module_loader.add_directory(str(REPO / "library"))


def payload_archive(module_data):
    """The zip inside an AnsiballZ module as Ansible's modify_module returns it (its bytes)."""
    zipped = re.search(rb"ZIPDATA = '([A-Za-z0-9+/=]+)'", module_data).group(1)
    return zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped)))
