"""Helpers for the JetPack doubles' tests: device files, per-generation subprocesses."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layout  # noqa: E402  (needs the path above)

NANO = {"name": "nano-1", "profile": "nano-jp461", "module": "jetson-nano", "soc": "tegra210",
        "compute_capability": "5.3", "memory_mib": 3964, "dla_cores": 0, "l4t": "32.7.1",
        "tensorrt_version": "8.2.1.8", "build_seconds": 0.05, "infer_ms": 1}
XAVIER = dict(NANO, name="xavier-1", profile="xavier-jp512", module="jetson-agx-xavier",
              soc="tegra194", compute_capability="7.2", memory_mib=31920, dla_cores=2,
              l4t="35.4.1", tensorrt_version="8.5.2.2")


class Generation:
    """Runs Python code in a subprocess that sees one generation's doubles."""

    def __init__(self, tmp_path, libs):
        self.tmp_path = tmp_path
        self.libs = libs

    def run(self, code, version, *, fault="ok", check=True, input=None,  # noqa: A002
            extra_env=None, **device):
        description = dict(NANO, **device)
        description["tensorrt_version"] = version
        folder = self.tmp_path / "dev-{}".format(len(list(self.tmp_path.glob("dev-*"))))
        folder.mkdir()
        (folder / "device.json").write_text(json.dumps(description))
        (folder / "fault").write_text(fault + "\n")
        env = dict(os.environ, SIMJETSON_DEVICE=str(folder / "device.json"),
                   SIMJETSON_FAULT=str(folder / "fault"), SIMJETSON_LIBS=str(self.libs),
                   PYTHONPATH=str(layout.site_packages_dir(layout.generation_for(version))),
                   TF_CPP_MIN_LOG_LEVEL="3")
        env.update(extra_env or {})
        result = subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
                                capture_output=True, text=True, env=env, cwd=str(folder),
                                input=input, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError("subprocess failed:\n{}\n{}".format(result.stdout, result.stderr))
        result.folder = folder
        return result




def last_json(result):
    """The last stdout line, parsed (probe scripts print their verdict there)."""
    return json.loads(result.stdout.strip().splitlines()[-1])


UFF_VARIANTS = r"""
import json, sys
import jetpack_ssd as f
sys.stdout = sys.stderr  # keep the converter's chatter off the verdict line
made = {
    "good": f.reference_recipe(f.mini_ssd()),
    "order_bad": f.reference_recipe(f.mini_ssd(), input_order=(1, 0, 2)),
    "classes_bad": f.reference_recipe(f.mini_ssd(), classes=4),
    "cast": f.reference_recipe(f.mini_ssd(cast=True)),
    # plugin nodes from create_node: unsuffixed field names, typed by the converter
    "good_plain": f.reference_recipe(f.mini_ssd(), suffixed=False),
    "order_bad_plain": f.reference_recipe(f.mini_ssd(), input_order=(1, 0, 2), suffixed=False),
    "classes_bad_plain": f.reference_recipe(f.mini_ssd(), classes=4, suffixed=False),
}
paths = {}
for name, graph in made.items():
    f.to_uff(graph, name + ".uff")
    paths[name] = name + ".uff"
sys.stdout = sys.__stdout__
print(json.dumps(paths))
"""

