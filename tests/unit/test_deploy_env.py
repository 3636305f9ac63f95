"""engine_deploy state=env (library/engine_deploy.py): the deploy environment in one module run
- the venv over the system Python when it has none, the wheel, the import check, and the
marker only when the check passed, written without following a link."""

from __future__ import annotations

import json

import pytest

from .test_deploy import DEPLOY


class Scripted:
    """AnsibleModule's run_command, answering from a script: (rc, stdout, stderr) per call."""

    check_mode = False

    def __init__(self, venv, import_rc=0):
        self.venv, self.import_rc, self.calls, self.warnings = venv, import_rc, [], []

    def warn(self, line):
        self.warnings.append(line)

    def run_command(self, argv):
        self.calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            (self.venv / "bin").mkdir(parents=True)
            (self.venv / "bin" / "python").write_text("")
            return 0, "", ""
        if argv[1:3] == ["-m", "pip"]:
            return 0, "", ""
        if self.import_rc:
            return (self.import_rc, "",
                    "Traceback\nModuleNotFoundError: No module named 'tensorrt'\n")
        return 0, "1.0 10.3.0\n", ""


MARKER = {"builder_version": "1.0", "builder_digest": "abc"}


def params(root):
    return {"install_root": str(root), "system_python": "/usr/bin/python3",
            "wheel": "trt_builder-1.0-py3-none-any.whl", "env_marker": MARKER}


def test_env_makes_the_venv_installs_checks_and_records(tmp_path):
    root = tmp_path / "engines"
    root.mkdir()
    module = Scripted(root / ".deploy-venv")
    result = DEPLOY.install_env(module, params(root))
    assert [call[1:3] for call in module.calls] == [["-m", "venv"], ["-m", "pip"],
                                                    ["-c", DEPLOY.ENV_IMPORT_CHECK]]
    assert module.calls[0][0] == "/usr/bin/python3"
    assert result["changed"] and result["import_rc"] == 0
    marker = root / ".deploy-venv" / "trt-deploy-env.json"
    assert json.loads(marker.read_text()) == MARKER
    assert marker.stat().st_mode & 0o7777 == 0o644
    # A venv already there is not made again.
    module = Scripted(root / ".deploy-venv")
    DEPLOY.install_env(module, params(root))
    assert [call[1:3] for call in module.calls][0] == ["-m", "pip"]


def test_env_without_tensorrt_writes_no_marker_and_says_why(tmp_path):
    root = tmp_path / "engines"
    root.mkdir()
    result = DEPLOY.install_env(Scripted(root / ".deploy-venv", import_rc=1), params(root))
    assert result["import_rc"] == 1
    assert result["import_stderr_lines"][-1] == "ModuleNotFoundError: No module named 'tensorrt'"
    assert not (root / ".deploy-venv" / "trt-deploy-env.json").exists()


def test_env_marker_replaces_a_planted_link_never_its_target(tmp_path):
    root = tmp_path / "engines"
    (root / ".deploy-venv" / "bin").mkdir(parents=True)
    (root / ".deploy-venv" / "bin" / "python").write_text("")
    outside = tmp_path / "outside.json"
    outside.write_text("must stay")
    (root / ".deploy-venv" / "trt-deploy-env.json").symlink_to(outside)
    module = Scripted(root / ".deploy-venv")
    DEPLOY.install_env(module, params(root))
    assert outside.read_text() == "must stay"
    assert json.loads((root / ".deploy-venv" / "trt-deploy-env.json").read_text()) == MARKER
    assert module.warnings


def test_env_refuses_a_wheel_name_that_is_a_path(tmp_path):
    root = tmp_path / "engines"
    (root / ".deploy-venv" / "bin").mkdir(parents=True)
    (root / ".deploy-venv" / "bin" / "python").write_text("")
    with pytest.raises(DEPLOY.DeployError):
        DEPLOY.install_env(Scripted(root / ".deploy-venv"), dict(params(root), wheel="../x.whl"))
