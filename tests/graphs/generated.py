"""Generate the SSD test graphs once per generator version, shared by the test modules.

The graphs land in a cache directory named after a digest of the generator's sources,
so every test process reuses them until the generator changes. Generation runs in a
subprocess (it switches TensorFlow to v1 behaviour, which must not leak into tests).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("make_ssd_graphs.py", "ssd_graph_builder.py")
CACHE_ROOT = Path(os.environ.get("SSD_GRAPHS_CACHE",
                                 Path(tempfile.gettempdir()) / "ssd-test-graphs"))


def _digest():
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def graphs_dir() -> Path:
    """Directory holding models.yml and one sub-directory per variant."""
    target = CACHE_ROOT / _digest()
    if (target / "models.yml").is_file():
        return target
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gen-", dir=CACHE_ROOT))
    try:
        subprocess.run([sys.executable, str(HERE / "make_ssd_graphs.py"), str(staging)],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        os.replace(staging, target)
    except OSError:
        # Another process finished first: use its copy.
        if not (target / "models.yml").is_file():
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
