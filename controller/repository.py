"""Where this checkout is: the files the controller reads from the repository (the device
modules, the guard's sources, the caches under .cache) are found from here."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
