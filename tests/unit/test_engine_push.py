"""The push step of a round (plugins/action/engine_push.py) with a fake connection: what it
asks of the device, in which order, and how a failed install fails it."""

from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError

from controller.device_push import PushStepFailed, push_commands, pushed_file, sender
from controller.round_result import DeviceGone

from .plugin_files import load

PUSH = load("plugins/action/engine_push.py", "engine_push_under_test")
WORK = "/opt/trt-builder/work"


class FakeDevice:
    """Every command and transfer, in order; each command answers the next answer given."""

    def __init__(self, *answers, put_raises=None):
        self.calls = []
        self.answers = list(answers)
        self.put_raises = put_raises
        self.connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None),
                                          put_file=self.put_file)

    def put_file(self, src, dest):
        self.calls.append(("put", src, dest))
        if self.put_raises is not None:
            raise self.put_raises

    def command(self, command):
        self.calls.append(("run", command))
        return self.answers.pop(0) if self.answers else {"rc": 0, "stdout": "", "stderr": ""}


def push_with(device, files, remove=()):
    commands = push_commands(files, remove=list(remove))
    task = SimpleNamespace(check_mode=False, async_val=0, args={
        "files": files, "prepare": commands["prepare"], "finish": commands["finish"]})
    action = PUSH.ActionModule(task, device.connection, None, None, None, None)
    action._low_level_execute_command = device.command
    return action.run(task_vars={}), commands


def test_removals_and_files_in_two_commands():
    device = FakeDevice()
    files = [pushed_file("/ctl/graph.pb", WORK + "/ssd", "graph.pb", "ssd/graph.pb"),
             pushed_file("/ctl/builder.whl", "/opt/trt-builder/wheels", "builder.whl", "wheel")]
    result, commands = push_with(device, files, remove=[WORK + "/dropped"])
    assert not result.get("failed") and result["changed"] is True
    assert result["pushed"] == ["ssd/graph.pb", "wheel"]
    assert device.calls == [("run", commands["prepare"]),
                            ("put", "/ctl/graph.pb", files[0]["part"]),
                            ("put", "/ctl/builder.whl", files[1]["part"]),
                            ("run", commands["finish"])]
    assert commands["prepare"].startswith("rm -rf -- " + WORK + "/dropped && umask 077")


def test_a_failed_device_command_fails_the_push_with_its_last_line():
    device = FakeDevice({"rc": 0}, {"rc": 1, "stderr": "mv: cannot move: No space left on "
                                                      "device\n"})
    files = [pushed_file("/ctl/builder.whl", "/opt/trt-builder/wheels", "builder.whl", "wheel")]
    result, _ = push_with(device, files)
    assert result["failed"] is True
    assert result["msg"] == ("push to the device failed while putting the files in place: "
                             "exit 1: mv: cannot move: No space left on device")


def test_only_removals_take_one_command_and_no_transfer():
    device = FakeDevice()
    result, commands = push_with(device, [], remove=[WORK + "/dropped"])
    assert result["changed"] is True
    assert device.calls == [("run", commands["prepare"])]


def test_nothing_to_do_asks_nothing_of_the_device():
    device = FakeDevice()
    result, _ = push_with(device, [])
    assert result["changed"] is False and device.calls == []


def test_a_transfer_that_fails_on_an_answering_device_fails_the_push_after_the_prepare():
    device = FakeDevice(put_raises=AnsibleError("sftp: No space left on device"))
    files = [pushed_file("/ctl/graph.pb", WORK + "/ssd", "graph.pb", "ssd/graph.pb")]
    result, commands = push_with(device, files)
    assert result["failed"] is True
    assert result["msg"] == ("push to the device failed while sending ssd/graph.pb: "
                             "sftp: No space left on device")
    assert device.calls == [("run", commands["prepare"]),
                            ("put", "/ctl/graph.pb", files[0]["part"])]


def test_a_lost_connection_during_the_push_goes_up_for_ansible_to_mark_the_device():
    device = FakeDevice(put_raises=AnsibleConnectionFailure("ssh: Connection reset"))
    files = [pushed_file("/ctl/graph.pb", WORK + "/ssd", "graph.pb", "ssd/graph.pb")]
    with pytest.raises(AnsibleConnectionFailure):
        push_with(device, files)


@pytest.mark.parametrize("raised, expected", [
    (AnsibleConnectionFailure("ssh: Connection reset"), DeviceGone),
    (AnsibleError("sftp: Permission denied"), PushStepFailed),
])
def test_the_finish_steps_sender_makes_a_lost_connection_a_gone_device(raised, expected):
    device = FakeDevice(put_raises=raised)
    put = sender(device.put_file, lost=DeviceGone)
    with pytest.raises(expected, match=str(raised)):
        put("/ctl/engine.bin", WORK + "/ssd/.engine.bin.part")
