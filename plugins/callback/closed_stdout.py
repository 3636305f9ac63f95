"""Keep a run going when whatever reads its output stops reading (``... | head``)."""

import errno
import os
import sys

from controller.callback import ProjectCallback

DOCUMENTATION = r"""
name: closed_stdout
type: aggregate
short_description: Keep the run going when its output's reader goes away
description:
  - When ansible-playbook's output is piped into a command that stops reading early
    (C(| head), C(| grep -m 1)), every later write to it fails with a broken pipe.
  - In ansible-core 2.16 one such write stops the run for good. The main process has one
    thread that takes the workers' results and prints what they ask it to print. A print
    that fails with a broken pipe ends that thread, and the main process then waits forever
    for results no one takes. This project's steps print their lines from their workers, so
    a build run hung, its devices and the store's run lock left as they were.
  - From the start of the playbook, this plugin stands in front of the output. When its
    reader is gone, it says so once on stderr and points the output at /dev/null. The run goes
    on to its end, devices, store, reports and exit code included, as it would have with its
    output read to the end.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary, fork_gc, closed_stdout)
"""

# Said once on stderr when the output's reader is gone.
READER_GONE = ("[closed_stdout] the output's reader closed it; the run goes on to its end "
               "without output (its summary and exit code are unchanged)\n")


class GuardedOutput:
    """sys.stdout, but a write or flush after its reader went away is dropped."""

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def write(self, text):
        if not self._gone:
            try:
                return self._stream.write(text)
            except OSError as error:
                self._reader_gone(error)
        return len(text)

    def flush(self):
        if not self._gone:
            try:
                self._stream.flush()
            except OSError as error:
                self._reader_gone(error)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def _reader_gone(self, error):
        if error.errno != errno.EPIPE:
            raise error
        self._gone = True
        # What is still buffered for the pipe would fail again when Python flushes at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
        sys.stderr.write(READER_GONE)


class CallbackModule(ProjectCallback):
    CALLBACK_NAME = "closed_stdout"

    def v2_playbook_on_start(self, playbook):
        # Before any worker is forked: the main process's threads print through it.
        if not isinstance(sys.stdout, GuardedOutput):
            sys.stdout = GuardedOutput(sys.stdout)
