"""Models: MONAI networks in Lightning modules, array data modules, MC-dropout scoring, TTA and
embeddings. Imports no widget code and no store."""

from workbench.models._data import (
    ArrayDataModule,
    ArrayDataset,
    Arrays,
    batch_loader,
    stable_val_mask,
)
from workbench.models._dropout import enable_mc_dropout, item_keys, mc_dropout
from workbench.models._errors import ModelError
from workbench.models._mc import (
    MCBatch,
    MCPrediction,
    Precision,
    TTABatch,
    default_flips,
    embeddings,
    iter_mc_predict,
    iter_tta_predict,
    mc_predict,
    resolve_device,
    sample_moments,
)
from workbench.models._modules import ClassificationModule, SegmentationModule
from workbench.models._networks import (
    TrunkHeadNet,
    build_classifier,
    build_segmenter,
    densenet121,
    resnet18_classifier,
    small_cnn,
)
from workbench.models._norm_stats import recalibrate_batch_norm
from workbench.models._pixels import pixels_as_float
from workbench.models._rng import keep_global_rng
from workbench.models._threads import keep_torch_threads
from workbench.models._training import (
    FitResult,
    ScoreWriter,
    default_precision,
    fit_and_checkpoint,
    gather_scores,
    make_trainer,
    training_device,
)
from workbench.models._windows import SlidingWindow, random_patches, window_predict

__all__ = [
    "ArrayDataModule",
    "ArrayDataset",
    "Arrays",
    "ClassificationModule",
    "FitResult",
    "MCBatch",
    "MCPrediction",
    "ModelError",
    "Precision",
    "ScoreWriter",
    "SegmentationModule",
    "SlidingWindow",
    "TTABatch",
    "TrunkHeadNet",
    "batch_loader",
    "build_classifier",
    "build_segmenter",
    "default_flips",
    "default_precision",
    "densenet121",
    "embeddings",
    "enable_mc_dropout",
    "fit_and_checkpoint",
    "gather_scores",
    "item_keys",
    "iter_mc_predict",
    "iter_tta_predict",
    "keep_global_rng",
    "keep_torch_threads",
    "make_trainer",
    "mc_dropout",
    "mc_predict",
    "pixels_as_float",
    "random_patches",
    "stable_val_mask",
    "recalibrate_batch_norm",
    "resolve_device",
    "resnet18_classifier",
    "sample_moments",
    "small_cnn",
    "training_device",
    "window_predict",
]
