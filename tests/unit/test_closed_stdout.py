"""A run whose output's reader goes away (`ansible-playbook ... | head`) goes on to its end
(plugins/callback/closed_stdout.py). Without it, ansible-core 2.16 stops taking the workers'
results at the first print that fails, and the main process waits for ever."""

import os
import subprocess
import sys
from pathlib import Path

from .plugin_files import REPO

HERE = Path(__file__).resolve().parent / "closed_stdout"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def run_with_reader_gone(tmp_path, callbacks=None):
    """ansible-playbook with the repository's ansible.cfg, its output read up to its first
    line only; (exit code, stderr, whether the last task ran)."""
    mark = tmp_path / "mark"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ACTION_PLUGINS=str(HERE),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    if callbacks is not None:
        env["ANSIBLE_CALLBACKS_ENABLED"] = callbacks
    playbook = subprocess.Popen(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "mark=" + str(mark),
         "-e", "ansible_python_interpreter=" + sys.executable, str(HERE / "playbook.yml")],
        cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    playbook.stdout.readline()
    playbook.stdout.close()  # the reader is gone, as `| head -1` leaves it
    try:
        _, stderr = playbook.communicate(timeout=300)
    finally:
        playbook.kill()
    return playbook.returncode, stderr.decode(), mark.is_file()


def test_the_run_goes_on_to_its_end_when_its_reader_is_gone(tmp_path):
    returncode, stderr, reached = run_with_reader_gone(tmp_path)
    assert returncode == 0, stderr
    assert reached
    assert stderr.count("[closed_stdout] the output's reader closed it") == 1, stderr
    assert "Broken pipe" not in stderr
