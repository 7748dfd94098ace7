"""Latency without running (issue 13): calibration samples, the per-op model, the predictor file.

    calibrate(device=, runtime=, dtype=, threads=, batch=, max_time=, out=) -> CalibrationResult
    predict(model_or_spec, inputs=None, knobs=, device=, runtime=, dtype=, threads=, predictor=, force=)
        -> PredictionResult

How: harvest.py (every op of a forward, from one count on meta), replay.py (an op alone on real tensors),
model.py (the per-op model and its fit), predictor.py (the fitted model and its JSON file),
calibrate.py, predict.py. docs/prediction.md says why this design.
"""

from ..callable_package import make_callable
from .calibrate import CalibrationResult, calibrate
from .predict import PredictedLayer, PredictionResult, predict, predict_harvest
from .predictor import Predictor, Target, default_path, make_target

__all__ = ["CalibrationResult", "PredictedLayer", "PredictionResult", "Predictor", "Target", "calibrate",
           "default_path", "make_target", "predict", "predict_harvest"]


make_callable(__name__, predict)
