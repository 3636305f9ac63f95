"""Which file a device builds its engine from: UFF (TensorRT < 8.4) or ONNX (>= 8.4).

The catalog key ``engine_path`` (auto | uff | onnx, default auto) can force one where the
platform can do it. Decided from the catalog and the TensorRT version alone, so that the
build key (catalog fields + platform_id, which names the TensorRT version) names the path.

- UFF: TensorRT 5 to 8.6 have the UffParser; TensorRT 10 removed it.
- ONNX with EfficientNMS_TRT: the plugin exists from TensorRT 8.0, but NMS results are
  unreliable before 8.4 (NVIDIA/TensorRT#1538), so the ONNX path starts at 8.4 and
  JetPack 4 (TensorRT <= 8.2) keeps UFF.
- A model whose anchors GridAnchor_TRT cannot reproduce (builder/graph/anchors.py) has no UFF
  path at all: the controller's graph check records why in the spec's ``uff_refusal``, and
  such a model is refused where the platform has only UFF.
"""

from ..errors import UserError
from ..platform.detect import ONNX_FROM, UFF_UNTIL

UFF = "uff"
ONNX = "onnx"
ONNX_ROUTE = ("Build it through ONNX: catalog key engine_path auto (or onnx), on a TensorRT >= "
              "{}.{} device (JetPack 5/6)".format(*ONNX_FROM))


def can_build(path, version):
    """Whether a TensorRT of parsed ``version`` (a tuple) can build from ``path``."""
    if path == UFF:
        return tuple(version[:2]) < UFF_UNTIL
    return tuple(version[:2]) >= ONNX_FROM


def choose_engine_path(spec, version, version_text, catalog_path):
    """'uff' or 'onnx' for ``spec`` on this TensorRT; UserError when the catalog forces a
    path the platform cannot build, or when only UFF is possible and ``spec.uff_refusal``
    (set by the controller's graph check, absent elsewhere) says UFF cannot build the model."""
    requested = getattr(spec, "engine_path", "auto") or "auto"
    uff_refusal = getattr(spec, "uff_refusal", None)
    where = "{}: model '{}', key 'engine_path'".format(catalog_path, spec.name)
    if requested == "auto" and can_build(ONNX, version):
        return ONNX
    if requested == "auto" and uff_refusal and can_build(UFF, version):
        raise UserError(
            "{}: model '{}' cannot be built here: TensorRT {} builds from UFF only (ONNX needs "
            ">= {}.{}), and the UFF path cannot build this model: {}. Build it on a JetPack "
            "5/6 device, or take it out of this host's engine_models".format(
                catalog_path, spec.name, version_text, ONNX_FROM[0], ONNX_FROM[1], uff_refusal))
    if requested == UFF and uff_refusal:
        raise UserError("{}: the UFF path cannot build this model: {}. Write engine_path: auto "
                        "(or onnx) and build it on a TensorRT >= {}.{} device (JetPack 5/6)"
                        .format(where, uff_refusal, ONNX_FROM[0], ONNX_FROM[1]))
    if requested == "auto":
        return UFF
    if can_build(requested, version):
        return requested
    if requested == UFF:
        raise UserError(
            "{}: uff cannot be built here: TensorRT {} has no UFF parser (removed in "
            "TensorRT 10, JetPack 6). Write engine_path: auto (or onnx) and export the model "
            "on the controller with: python3 -m builder onnx {} --catalog {} --out DIR".format(
                where, version_text, spec.name, catalog_path))
    raise UserError(
        "{}: onnx cannot be built here: TensorRT {} is older than {}.{}, where "
        "EfficientNMS_TRT is unreliable (NVIDIA/TensorRT#1538). Write engine_path: auto (or "
        "uff) to build this model from UFF on this device, or build it on a JetPack 5/6 "
        "device".format(where, version_text, ONNX_FROM[0], ONNX_FROM[1]))
