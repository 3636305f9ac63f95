"""What the facts module sends to every device on every run: Ansible's own packing of it
(AnsiballZ, as ansible-playbook builds it), read back. Its documentation stays on the
controller (library/jetson_facts.yml) and the deploy's writing half of the layout code
(module_utils/trt_deploy_write.py) is not in it; the deploy module still gets both halves."""

import pytest
from ansible.executor.module_common import modify_module
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import module_loader
from ansible.template import Templar

from .plugin_files import ansible_plugins, payload_archive


@pytest.fixture(scope="module")
def packed():
    """module name -> {file name in the payload: its text}."""
    ansible_plugins()

    def pack(name):
        data, _, _ = modify_module(
            name, module_loader.find_plugin(name), {}, Templar(loader=DataLoader()),
            task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
            module_compression="ZIP_DEFLATED")
        archive = payload_archive(data)
        return {info.filename: archive.read(info).decode("utf-8")
                for info in archive.infolist()}

    return {name: pack(name) for name in ("jetson_facts", "engine_deploy")}


def test_the_facts_module_travels_without_its_documentation(packed):
    module = packed["jetson_facts"]["ansible/modules/jetson_facts.py"]
    for block in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        assert block not in module


def test_the_facts_module_takes_the_reading_half_only(packed):
    files = set(packed["jetson_facts"])
    assert "ansible/module_utils/trt_deploy.py" in files
    assert "ansible/module_utils/trt_deploy_write.py" not in files


def test_the_deploy_module_takes_both_halves(packed):
    files = set(packed["engine_deploy"])
    assert {"ansible/module_utils/trt_deploy.py",
            "ansible/module_utils/trt_deploy_write.py"} <= files
