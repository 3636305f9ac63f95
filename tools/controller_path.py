"""Put this repository on the path of the Python that runs ansible-playbook.

The controller package (controller/) and the builder (builder/) are imported by the Ansible
plugins of this repository; a .pth file in that Python's site-packages names the repository
root, which is what an editable install does, without a build step. Run it with the
controller's Python (make venv does): .venv/bin/python tools/controller_path.py
"""

import site
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PTH_NAME = "jetson-engine-controller.pth"


def main() -> int:
    site_dir = Path(site.getsitepackages()[0])
    target = site_dir / PTH_NAME
    target.write_text(str(REPO) + "\n")
    print("controller package: {} -> {}".format(target, REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
