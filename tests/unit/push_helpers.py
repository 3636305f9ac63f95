"""A push (controller/device_push.py) carried out on this machine: its two commands run by a
real shell, with a copy standing for each file's transfer (engine_push's sftp put)."""

import subprocess

from controller.device_push import PRIVATE, push_commands


def push_here(push, access=PRIVATE, remove=()):
    commands = push_commands(push, access, remove=remove)
    subprocess.run(["sh", "-c", commands["prepare"]], check=True)
    for item in push:
        with open(item["part"], "w") as part, open(item["src"]) as source:
            part.write(source.read())
    subprocess.run(["sh", "-c", commands["finish"]], check=True)
