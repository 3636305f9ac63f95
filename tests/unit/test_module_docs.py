"""Every module of library/ and every callback of plugins/callback/ documents itself: the
ansible-doc a user runs reads its DOCUMENTATION, EXAMPLES and RETURN blocks (YAML, where a
colon inside a sentence silently turns the text into a key)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DOC = str(Path(sys.executable).parent / "ansible-doc")
DOCUMENTED = [("module", path.stem, "library") for path in sorted((REPO / "library").glob("*.py"))]
DOCUMENTED += [("callback", path.stem, "plugins/callback")
               for path in sorted((REPO / "plugins" / "callback").glob("*.py"))]


@pytest.mark.parametrize("kind,name,directory", DOCUMENTED, ids=[d[1] for d in DOCUMENTED])
def test_ansible_doc_reads_the_plugin(kind, name, directory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    if kind == "module":
        env["ANSIBLE_LIBRARY"] = str(REPO / directory)
    else:
        env["ANSIBLE_CALLBACK_PLUGINS"] = str(REPO / directory)
    done = subprocess.run([ANSIBLE_DOC, "--json", "-t", kind, name], check=False, cwd=str(REPO),
                          env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)[name]
    assert doc["doc"]["short_description"], doc
    if kind == "module":
        assert doc["return"], "{} documents no return values".format(name)
