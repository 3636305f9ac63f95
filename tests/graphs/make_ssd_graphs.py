#!/usr/bin/env python3
"""Generate small frozen SSD graphs (TF Object Detection API naming) and their catalog.

    python tests/graphs/make_ssd_graphs.py OUT_DIR [--variant NAME ...] [--no-run]

Writes OUT_DIR/<variant>/frozen_inference_graph.pb (plus pipeline.config for the
variant that has one) and OUT_DIR/models.yml, a model catalog with sha256 pins.
Deterministic: the same command writes byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssd_graph_builder import Variant, build_graph_def, run_once  # noqa: E402

GRAPH_FILE = "frozen_inference_graph.pb"

VARIANTS = {
    v.name: v
    for v in (
        Variant("ssd_mobilenet_v1_coco", "MobilenetV1", 91, seed=1),
        Variant("ssd_mobilenet_v2_coco", "MobilenetV2", 91, seed=2,
                postprocessor_order="scores_first", anchor_concat_scope="Concatenate",
                dynamic_anchor_inputs=False),
        Variant("ssd_inception_v2_coco", "InceptionV2", 91, seed=3,
                anchor_concat_scope="Concatenate"),
        Variant("ssdlite_mobilenet_v2_coco", "ssdlite", 91, seed=4,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v1_egohands", "MobilenetV1", 3, seed=5, min_scale=0.05),
        Variant("ssd_mobilenet_v2_tf115", "MobilenetV2", 91, seed=6, tf115=True,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v2_256", "MobilenetV2", 11, seed=7, input_size=256,
                num_layers=5, anchor_concat_scope="Concatenate"),
        Variant("ssd_mobilenet_v1_pipeline", "MobilenetV1", 6, seed=8, min_scale=0.3,
                max_scale=0.9, aspect_ratios=(1.0, 2.0, 0.5), pipeline_config=True),
    )
}

PIPELINE_TEMPLATE = """\
# Written by tests/graphs/make_ssd_graphs.py (test data, not a trained model).
model {{
  ssd {{
    num_classes: {classes}
    image_resizer {{
      fixed_shape_resizer {{
        height: {size}
        width: {size}
      }}
    }}
    anchor_generator {{
      ssd_anchor_generator {{
        num_layers: {layers}
        min_scale: {min_scale}
        max_scale: {max_scale}
{ratios}
        reduce_boxes_in_lowest_layer: true
      }}
    }}
  }}
}}
"""


def pipeline_config_text(variant):
    ratios = "\n".join(f"        aspect_ratios: {ratio}" for ratio in variant.aspect_ratios)
    return PIPELINE_TEMPLATE.format(classes=variant.num_classes - 1, size=variant.input_size,
                                    layers=variant.num_layers, min_scale=variant.min_scale,
                                    max_scale=variant.max_scale, ratios=ratios)


def _write(path, data):
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def catalog_entry(variant, graph_sha256):
    lines = [
        f"  {variant.name}:",
        f"    graph: {variant.name}/{GRAPH_FILE}",
        f"    sha256: {graph_sha256}",
        "    num_classes: auto",
        "    input_order: auto",
    ]
    if variant.pipeline_config:
        # min/max must agree with the pipeline.config; the builder checks it.
        lines.append(f"    pipeline_config: {variant.name}/pipeline.config")
    else:
        lines.append(f"    aspect_ratios: [{', '.join(str(r) for r in variant.aspect_ratios)}]")
    lines += [f"    min_size: {variant.min_scale}", f"    max_size: {variant.max_scale}"]
    if variant.input_size != 300:
        lines.append(f"    input_dims: [3, {variant.input_size}, {variant.input_size}]")
    return "\n".join(lines)


def generate(out_dir, names, run_check=True):
    import tensorflow as tf  # noqa: PLC0415  (slow import: only when generating)

    tf.get_logger().setLevel("ERROR")   # no deprecation notices of the TF 1 API we use
    tf1 = tf.compat.v1
    tf1.disable_v2_behavior()  # v1 control flow: TF 1.x style while loops in map_fn
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in names:
        variant = VARIANTS[name]
        graph_def = build_graph_def(tf1, variant)
        if run_check:
            outputs = run_once(tf1, graph_def, variant.input_size)
            total = sum(s * s * a for s, a in zip(variant.feature_map_sizes,
                                                   variant.anchors_per_location))
            assert outputs["concat_1"].shape == (1, total, variant.num_classes), name
            assert outputs["detection_boxes"].shape == (1, 100, 4), name
        data = graph_def.SerializeToString(deterministic=True)
        model_dir = out_dir / name
        model_dir.mkdir(exist_ok=True)
        _write(model_dir / GRAPH_FILE, data)
        if variant.pipeline_config:
            _write(model_dir / "pipeline.config", pipeline_config_text(variant).encode())
        entries.append(catalog_entry(variant, hashlib.sha256(data).hexdigest()))
    catalog = ("# Generated by tests/graphs/make_ssd_graphs.py: SSD test graphs.\n"
               "version: 1\nmodels:\n" + "\n".join(entries) + "\n")
    _write(out_dir / "models.yml", catalog.encode())
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                        help="generate only this variant (repeatable); default: all")
    parser.add_argument("--no-run", action="store_true",
                        help="skip running each graph once with TensorFlow")
    args = parser.parse_args(argv)
    out = generate(args.out_dir, args.variant or list(VARIANTS), not args.no_run)
    print(f"wrote {len(args.variant or VARIANTS)} graph(s) and {out / 'models.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
