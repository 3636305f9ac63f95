"""A device's disk after a failed step (controller/diskspace.py): the probe's command writes
nothing, its untrusted answer is parsed strictly, and the `disk` failure names the device, the
directory and its free space."""

import subprocess

from controller import diskspace

DF = "/dev/mmcblk0p1  14384136 14384136  {}  100% /"


def test_the_probe_reads_each_directory_or_its_nearest_existing_parent(tmp_path):
    present = tmp_path / "present"
    present.mkdir()
    missing = tmp_path / "not yet" / "there"
    command = diskspace.probe_command([str(present), str(missing), diskspace.HOME])
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                            check=True).stdout
    free = diskspace.parse_probe(output)
    assert str(present) in free and str(missing) in free and len(free) == 3, output
    assert all(isinstance(mib, int) and mib >= 0 for mib in free.values())
    assert list(tmp_path.iterdir()) == [present]  # nothing was written


def test_a_lying_or_garbled_answer_is_left_out():
    output = "\n".join([
        "/opt/trt-builder", DF.format(0),
        "../../etc", DF.format(5),               # not an absolute plain path
        "/tmp/x\x1b[2J", DF.format(5),           # control characters
        "/root", "garbage line",                 # not df's line
        "/var", DF.format("-5"),                 # not a count
    ])
    assert diskspace.parse_probe(output) == {"/opt/trt-builder": 0}


def test_a_full_directory_is_a_disk_failure_naming_device_directory_and_figure():
    message = diskspace.disk_failure("nano-1", "Push each graph",
                                     {"/opt/trt-builder": 0, "/tmp": 0, "/root": 0}, "",
                                     "/opt/trt-builder")
    assert message.startswith("device nano-1: its disk is full at step 'Push each graph': ")
    assert "/opt/trt-builder has 0 MiB free, /tmp has 0 MiB free" in message
    assert "jetson_facts_root_dir" in message and message.endswith("(disk)")


def test_only_the_temporary_directory_full_gives_no_advice_about_the_builders_directory():
    message = diskspace.disk_failure("nano-1", "facts", {"/opt/trt-builder": 900, "/tmp": 3},
                                     "", "/opt/trt-builder")
    assert "/tmp has 3 MiB free" in message and "/opt/trt-builder" not in message
    assert "jetson_facts_root_dir" not in message


def test_enospc_in_the_failure_makes_it_disk_even_with_room_left_after_it():
    free = {"/opt/trt-builder": 100, "/tmp": 100}
    assert diskspace.disk_failure("tx2-1", "Push each graph", free, "some other error") is None
    message = diskspace.disk_failure("tx2-1", "Push each graph", free,
                                     "[Errno 28] No space left on device: '/opt/x'")
    assert "/opt/trt-builder has 100 MiB free, /tmp has 100 MiB free" in message
    assert message.endswith("(disk)")
    assert "Errno" not in message  # the failure's own text is searched, never shown
