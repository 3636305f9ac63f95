"""The jetson_env role's pack script (roles/jetson_env/tasks/venv.yml), run by a real shell:
one archive per wheelhouse content, reused while the files stay, and the archives no device
was given for a day removed."""

import os
import subprocess
import time
from pathlib import Path

import yaml

VENV_TASKS = Path(__file__).resolve().parents[2] / "roles" / "jetson_env" / "tasks" / "venv.yml"


def pack_script():
    task = next(t for t in yaml.safe_load(VENV_TASKS.read_text())
                if t["name"].startswith("Pack the hash-pinned requirements"))
    return task["vars"]["jetson_env_pack_script"]


def pack(wheelhouse, names):
    done = subprocess.run(["sh", "-c", pack_script(), "sh", str(wheelhouse)] + names,
                          check=True, stdout=subprocess.PIPE, universal_newlines=True)
    return done.stdout.splitlines()


def test_an_archive_is_made_once_reused_and_old_ones_are_removed(tmp_path):
    for name in ("requirements.txt", "requirements-bootstrap.txt", "a-1.0-py3-none-any.whl"):
        (tmp_path / name).write_text(name)
    names = ["requirements.txt", "requirements-bootstrap.txt", "a-1.0-py3-none-any.whl"]
    stale = tmp_path / "push-0123456789abcdef.tar"
    stale.write_text("an archive of files the wheelhouse no longer has")
    two_days_ago = time.time() - 2 * 86400
    os.utime(str(stale), (two_days_ago, two_days_ago))

    status, archive = pack(tmp_path, names)
    assert status == "packed" and Path(archive).is_file() and not stale.exists()
    listed = subprocess.run(["tar", "-tf", archive], check=True, stdout=subprocess.PIPE,
                            universal_newlines=True).stdout.split()
    assert sorted(listed) == sorted(names)

    os.utime(archive, (two_days_ago, two_days_ago))  # reused after two days: kept and touched
    assert pack(tmp_path, names) == ["kept", archive]
    assert Path(archive).stat().st_mtime > two_days_ago + 86400
    (tmp_path / "b-2.0-py3-none-any.whl").write_text("b")
    status, other = pack(tmp_path, names + ["b-2.0-py3-none-any.whl"])
    assert status == "packed" and other != archive
    assert sorted(p.name for p in tmp_path.glob("push-*.tar")) == sorted(
        [Path(archive).name, Path(other).name])  # a day old at most: both stay
