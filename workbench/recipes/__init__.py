"""Training recipes shared by ``workbench simulate`` and the store-backed loop.

A recipe is a frozen dataclass of everything that decides how a model is trained; the functions
train it on arrays and score arrays with it::

    recipe = ClassificationRecipe(max_epochs=30)
    trained = train_classifier(recipe, x_lab, y_lab, x_val, y_val, seed=0)
    probs = predict_probs(trained, x_pool)          # [N, T, C] MC dropout
    feats = embed(trained, x_pool)                  # [N, D]
    # next round, warm start: train_classifier(..., init_state=trained.state_dict)

Data parallel: ``ClassificationRecipe(devices=4, strategy="ddp")`` (or ``SegmentationRecipe``)
trains the same model (up to float rounding) as one process, and `predict_scores` scores a pool
in shards, one per process.

Cold start with no model: `contrastive_features` (SimCLR features of unlabelled images);
`train_contrastive` gives the encoder's trunk weights too, which `train_classifier(...,
trunk_state=)` can start from.

Segmentation: `SegmentationRecipe`, `train_segmenter`, `predict_segmentation` (per-image
scores and per-voxel uncertainty maps), `predict_segmentation_probs` ([N, T, C, *spatial]).
`pretrain_restoration` trains the segmenter's network on unlabelled scans (restoring painted-over
boxes), which `train_segmenter(..., pretrained_state=)` can start from.
"""

from workbench.recipes._classification import (
    ClassificationRecipe,
    NetworkFactory,
    TrainedModel,
    class_weights,
    classification_metrics,
    embed,
    predict_mean,
    predict_probs,
    train_classifier,
    trunk_fits,
)
from workbench.recipes._contrastive import (
    ContrastiveEncoder,
    contrastive_features,
    train_contrastive,
)
from workbench.recipes._pool_scores import predict_scores
from workbench.recipes._restoration import (
    DEFAULT_RESTORATION_STEPS,
    load_pretrained,
    paint_boxes,
    pretrain_restoration,
)
from workbench.recipes._segmentation import (
    SegmentationPrediction,
    SegmentationRecipe,
    SegmenterFactory,
    TrainedSegmenter,
    UNetFactory,
    dice_scores,
    iter_segmentation_moments,
    iter_segmentation_probs,
    predict_labels,
    predict_segmentation,
    predict_segmentation_probs,
    small_unet,
    train_segmenter,
)

__all__ = [
    "DEFAULT_RESTORATION_STEPS",
    "ClassificationRecipe",
    "ContrastiveEncoder",
    "NetworkFactory",
    "SegmentationPrediction",
    "SegmentationRecipe",
    "SegmenterFactory",
    "TrainedModel",
    "TrainedSegmenter",
    "UNetFactory",
    "class_weights",
    "contrastive_features",
    "classification_metrics",
    "dice_scores",
    "embed",
    "iter_segmentation_moments",
    "iter_segmentation_probs",
    "load_pretrained",
    "paint_boxes",
    "predict_labels",
    "predict_mean",
    "predict_probs",
    "predict_scores",
    "predict_segmentation",
    "predict_segmentation_probs",
    "pretrain_restoration",
    "small_unet",
    "train_classifier",
    "train_contrastive",
    "train_segmenter",
    "trunk_fits",
]
