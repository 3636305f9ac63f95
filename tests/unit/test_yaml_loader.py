"""controller/yaml_loader.py: the controller's YAML loader reads the same documents as PyYAML's
pure-Python safe loader, and is libyaml's where PyYAML has it (the speed it is there for)."""

from pathlib import Path

import pytest
import yaml

from controller import yaml_loader

REPO = Path(__file__).resolve().parents[2]
FILES = sorted(str(p.relative_to(REPO)) for p in
               [*(REPO / "inventory" / "jetsons").rglob("*.yml"),
                REPO / "roles" / "jetson_env" / "vars" / "main.yml"])


def test_libyaml_is_used_where_pyyaml_has_it():
    assert hasattr(yaml, "CSafeLoader"), "this controller's PyYAML lacks libyaml"
    assert yaml_loader.SAFE_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("relative", FILES)
def test_the_same_documents_as_the_pure_python_loader(relative):
    text = (REPO / relative).read_text()
    assert yaml_loader.safe_load(text) == yaml.load(text, Loader=yaml.SafeLoader)


def test_it_refuses_what_a_safe_loader_refuses():
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml_loader.safe_load("!!python/object/apply:os.system ['true']")
