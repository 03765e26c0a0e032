"""Training: the config and records, the steps (autograd, hand-fused, written-out backward), CUDA graphs of whole
epochs, the loop.

Writing a run folder around a training run is the next layer, digitnet.runs.
"""

from digitnet.training.devices import check_precision, cuda_numerics, resolve_device
from digitnet.training.loop import fit, prepare_test_tensors
from digitnet.training.records import EpochRecord, EpochState, TrainConfig, TrainResult
from digitnet.training.stops import PeerFailure, RunStopped, SaveFailed, TrainingDiverged, TrainingInterrupted

__all__ = ["EpochRecord", "EpochState", "PeerFailure", "RunStopped", "SaveFailed", "TrainConfig", "TrainResult",
           "TrainingDiverged", "TrainingInterrupted", "check_precision", "cuda_numerics", "fit", "resolve_device",
           "prepare_test_tensors"]
