"""An fp16 ONNX for strongly typed TensorRT (11 and later), verified against the fp32 one.

TensorRT 11 builds every network strongly typed: the engine computes in the types of the
ONNX tensors, and no builder flag turns fp32 into fp16 (NVIDIA's 10.x -> 11.x migration
guide points to converting the ONNX, e.g. with ModelOpt AutoCast). So ``engine_precision:
fp16`` on such a device needs an fp16 ONNX, made here once per model on the controller:

- onnxconverter-common's float16 pass converts the cut graph (the backbone, the feature
  maps and the box predictors: where the compute is), keeping its input and its two
  outputs fp32 (it puts a Cast at each);
- the post-processing is appended to that in fp32, as to the fp32 model: the box coder
  scaling, the score converter, the box decoding, EfficientNMS_TRT (whose boxes and scores
  must share one type) and the stage behind it. The engine takes and gives what the fp32
  one does;
- onnxruntime runs both models on the test images of the fp32 verification; the fp16
  model's cut tensors and detections must match the fp32 model's within the tolerances
  below (fp16 has an 11-bit significand: about 3 decimal digits).
"""

import numpy as np

from ..errors import UserError
from ..onnx import crosscheck
from ..onnx import export as onnx_export

# fp16 against fp32, on the same preprocessed image: the largest absolute difference of
# the cut tensors, and how close the detections must be. A detection is matched when its
# box overlaps its fp32 twin with IoU >= MIN_IOU and its score differs by <= SCORE_TOLERANCE.
CUT_TOLERANCE = 0.05
MIN_IOU = 0.95
SCORE_TOLERANCE = 0.01
CONVERTER = "onnxconverter-common float16 (backbone and predictors; post-processing fp32)"


def import_converter():
    try:
        from onnxconverter_common import float16  # noqa: PLC0415  (controller only)
    except ImportError as error:
        raise UserError(
            "cannot import onnxconverter_common ({}): an fp16 engine for a strongly typed "
            "TensorRT (11 and later) needs an fp16 ONNX, made on the controller. Install it "
            "with: pip install -r requirements/dev.txt -c requirements/constraints.txt".format(
                error)) from error
    return float16


def convert(export):
    """The fp16 model of an fp32 ``export``: its cut graph converted (keeping the types of
    its input and its two outputs), then the same post-processing appended in fp32."""
    float16 = import_converter()
    with onnx_export.tool_step(export.spec, "the fp16 conversion (onnxconverter-common)"):
        cut = float16.convert_float_to_float16(export.cut, keep_io_types=True)
    return onnx_export.with_nms(export, cut)


def crosscheck_fp16(export, fp16_model, seed=crosscheck.IMAGE_SEED):
    """The figures of ``fp16_model`` against the fp32 export, on each test image, with ``ok``."""
    fp32_split = crosscheck.NmsSplit(export.model)
    fp16_split = crosscheck.NmsSplit(fp16_model)
    figures, problems = [], []
    for what, image in crosscheck.test_images(export.facts.layout.input_dims, seed):
        preprocessed = crosscheck.run_tensorflow(export.facts, image)["preprocessed"]
        fp32, fp32_found = crosscheck.run_detections(fp32_split, preprocessed)
        # The fp32 scores rank the fp16 model's candidates (near-ties kept as fp32 kept
        # them); every score compared is the fp16 model's own.
        fp16, fp16_found = crosscheck.run_detections(
            fp16_split, preprocessed, order_scores=fp32[onnx_export.SCORES_INPUT])
        errors = {name: float(np.max(np.abs(np.asarray(fp16[tensor], np.float64) -
                                            np.asarray(fp32[tensor], np.float64))))
                  for name, tensor in (("boxes", onnx_export.RAW_BOXES),
                                       ("logits", onnx_export.RAW_SCORES),
                                       ("scores", onnx_export.SCORES_INPUT))}
        matched = crosscheck.match_detections(
            crosscheck.plugin_detections(fp32_found), crosscheck.plugin_detections(fp16_found),
            fp32_split.attributes["score_threshold"], MIN_IOU, SCORE_TOLERANCE)
        label = "{} ({})".format(what, "x".join(str(d) for d in image.shape[1:3]))
        problems += ["{}: {}: max abs error {:.3g} above {}".format(label, name, error,
                                                                    CUT_TOLERANCE)
                     for name, error in sorted(errors.items()) if error > CUT_TOLERANCE]
        if not matched["matched"] == matched["tensorflow"] == matched["onnx"]:
            problems.append("{}: detections: {} of the fp32 model's {} matched (the fp16 "
                            "model gave {})".format(label, matched["matched"],
                                                    matched["tensorflow"], matched["onnx"]))
        figures.append({"image": what, "shape": list(image.shape),
                        "cut_max_abs_error": errors, "detections": matched})
    return {"ok": not problems, "problems": problems, "images": figures,
            "reference": "the fp32 export, onnxruntime {} (CPU)".format(
                crosscheck.ort_version()),
            "converter": CONVERTER,
            "tolerances": {"cut_max_abs_error": CUT_TOLERANCE, "min_iou": MIN_IOU,
                           "score_error": SCORE_TOLERANCE}}
