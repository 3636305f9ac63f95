"""The models the benchmark builds: a private copy of two test graphs and their catalog.

A private copy, because the "one graph changed" step changes a graph: it appends a protobuf
field with an unused number to the GraphDef, as a re-export that differs in bytes only would;
parsers keep unknown fields, so the graph still converts, and its sha256 (pinned in the
catalog) changes.
"""

import hashlib
import shutil
from pathlib import Path

import yaml

from bench.fleet_session import BenchError
from tests.graphs.generated import graphs_dir

DEFAULT_MODELS = ("ssd_mobilenet_v2_coco", "ssd_mobilenet_v1_coco")
UNUSED_FIELD_TAG = bytes([0xC0, 0x3E])   # field 1000, varint (GraphDef does not use it)


class Workload:
    def __init__(self, work_dir, models=DEFAULT_MODELS):
        self.dir = Path(work_dir)
        self.models = list(models)
        self.catalog = self.dir / "models.yml"
        self.changes = 0

    def prepare(self):
        graphs = graphs_dir()  # generated once per generator version, then cached
        source = graphs / "models.yml"
        catalog = yaml.safe_load(source.read_text())
        unknown = [m for m in self.models if m not in catalog["models"]]
        if unknown:
            raise BenchError("{}: no model {} (known: {})".format(
                source, ", ".join(unknown), ", ".join(catalog["models"])))
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        entries = {}
        for model in self.models:
            entry = dict(catalog["models"][model])
            for key in ("graph", "pipeline_config"):
                if entry.get(key):
                    target = self.dir / entry[key]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(graphs / entry[key], target)
            entries[model] = entry
        self._write_catalog(entries)
        return self

    def _write_catalog(self, entries):
        self.catalog.write_text("# Benchmark copy (bench/workload.py)\n" + yaml.safe_dump(
            {"version": 1, "models": entries}, sort_keys=False))

    def entries(self):
        return yaml.safe_load(self.catalog.read_text())["models"]

    def graph_path(self, model):
        return self.dir / self.entries()[model]["graph"]

    def change_graph(self, model):
        """Make `model`'s graph differ in bytes (a new varint value each time) and re-pin it."""
        self.changes += 1
        path = self.graph_path(model)
        with open(path, "ab") as handle:
            handle.write(UNUSED_FIELD_TAG + _varint(self.changes))
        entries = self.entries()
        entries[model]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        self._write_catalog(entries)


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
