#!/usr/bin/env python3
"""Generate small frozen SSD graphs (TF Object Detection API naming) and their catalog.

    python tests/graphs/make_ssd_graphs.py OUT_DIR [--variant NAME ...] [--no-run]
                                           [--check-fast]

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

# Variants with a twin among the genuine exports (tests/graphs/genuine, the same pipeline
# config exported by the real OD API exporter) are held against it by
# tests/graphs/test_generator_vs_genuine.py: their anchor concat, static anchor inputs and
# 2019 Postprocessor are what that exporter writes. The others keep traits of older
# exports the tools must read too: ssd_mobilenet_v2_coco the 2018_03_29 zoo export (2018
# Postprocessor, scores converted first), egohands / v2_256 / pipeline the anchor
# generator reading the image size at run time and the older anchor concat scope.
VARIANTS = {
    v.name: v
    for v in (
        Variant("ssd_mobilenet_v1_coco", "MobilenetV1", 91, seed=1,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v2_coco", "MobilenetV2", 91, seed=2, postprocessor_era="2018",
                postprocessor_order="scores_first", anchor_concat_scope="Concatenate",
                dynamic_anchor_inputs=False),
        Variant("ssd_inception_v2_coco", "InceptionV2", 91, seed=3,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssdlite_mobilenet_v2_coco", "ssdlite", 91, seed=4,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v1_egohands", "MobilenetV1", 3, seed=5, min_scale=0.05),
        Variant("ssd_mobilenet_v2_tf115", "MobilenetV2", 91, seed=6, tf115=True,
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v2_256", "MobilenetV2", 11, seed=7, input_size=256,
                num_layers=5, anchor_concat_scope="Concatenate"),
        Variant("ssd_mobilenet_v1_pipeline", "MobilenetV1", 6, seed=8, min_scale=0.3,
                max_scale=0.9, aspect_ratios=(1.0, 2.0, 0.5), pipeline_config=True),
        Variant("ssd_mobilenet_v1_softmax", "MobilenetV1", 91, seed=9,
                score_converter="softmax", anchor_concat_scope="Concatenate",
                dynamic_anchor_inputs=False),
        Variant("ssd_mobilenet_v1_256_5class", "MobilenetV1", 6, seed=10, input_size=256,
                min_scale=0.15, max_scale=0.9, aspect_ratios=(1.0, 2.0, 0.5),
                anchor_concat_scope="Concatenate", dynamic_anchor_inputs=False),
        # The layout of a late-2018 export (vk_pikachu of the shared real graphs: one
        # class, 256x256, five layers): the 2018 Postprocessor, clipping before the NMS.
        Variant("ssd_mobilenet_v1_256_2018", "MobilenetV1", 2, seed=11, input_size=256,
                num_layers=5, postprocessor_era="2018", anchor_concat_scope="Concatenate",
                dynamic_anchor_inputs=False),
    )
}

# Genuine export (tests/graphs/genuine/configs/<name>.config) -> the generated variant of
# the same configuration. The generator does not model channel depths (every layer has
# FEATURE_CHANNELS), so the 0.75 depth multiplier export has the coco variant as twin.
GENUINE_TWINS = {
    "ssd_mobilenet_v1_coco": "ssd_mobilenet_v1_coco",
    "ssd_mobilenet_v1_075_depth": "ssd_mobilenet_v1_coco",
    "ssd_mobilenet_v1_softmax": "ssd_mobilenet_v1_softmax",
    "ssd_mobilenet_v1_256_5class": "ssd_mobilenet_v1_256_5class",
    "ssd_mobilenet_v2_coco": "ssd_mobilenet_v2_tf115",
    "ssd_inception_v2_coco": "ssd_inception_v2_coco",
    "ssdlite_mobilenet_v2_coco": "ssdlite_mobilenet_v2_coco",
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


def generate(out_dir, names, run_check=True, check_fast=False):
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
            total = variant.num_anchors
            assert outputs["concat_1"].shape == (1, total, variant.num_classes), name
            assert outputs["detection_boxes"].shape == (1, 100, 4), name
            assert 0 < outputs["num_detections"][0] <= 100, name
        data = graph_def.SerializeToString(deterministic=True)
        if check_fast:
            slow = build_graph_def(tf1, variant, fast=False)
            if slow.SerializeToString(deterministic=True) != data:
                raise SystemExit(f"{name}: the copied classes of the NMS loop differ from "
                                 "the ones TensorFlow builds (build_graph_def fast=False)")
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
    parser.add_argument("--check-fast", action="store_true",
                        help="also build every class of the NMS loop with TensorFlow and "
                             "fail unless the graph is the same (slow)")
    args = parser.parse_args(argv)
    out = generate(args.out_dir, args.variant or list(VARIANTS), not args.no_run,
                   args.check_fast)
    print(f"wrote {len(args.variant or VARIANTS)} graph(s) and {out / 'models.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
