"""Plain records the store reads and writes. No database types leak out of the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Task(str, Enum):
    CLASSIFICATION = "classification"
    SEGMENTATION = "segmentation"


class LabelSource(str, Enum):
    """Where a label version came from (its provenance)."""

    HUMAN = "human"  # drawn or chosen by a person with no proposal used
    ACCEPTED = "accepted"  # a model proposal accepted unchanged by a person
    CORRECTED = "corrected"  # a model proposal corrected by a person
    IMPORTED = "imported"  # came with the imported data
    GROUND_TRUTH = "ground_truth"  # hidden oracle label for simulation; never served as a label


class ModelStatus(str, Enum):
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


class RoundStatus(str, Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ProjectConfig:
    """What a project is about; written once at ``init``."""

    name: str
    task: Task
    classes: tuple[str, ...]
    created_at: float = 0.0


@dataclass(frozen=True)
class NewItem:
    """An item to add. ``key`` is the stable external identity (unique per project)."""

    key: str
    source_uri: str
    content_hash: str
    modality: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    split: str = "train"
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    id: int
    key: str
    source_uri: str
    content_hash: str
    modality: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    split: str
    created_at: float
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelSubmission:
    """A label as a person (or an import) submits it. Exactly one of class_index / mask is set."""

    item_id: int
    annotator: str
    source: LabelSource
    class_index: int | None = None
    mask: np.ndarray | None = None
    started_at: float | None = None
    seconds_spent: float | None = None
    model_version_id: int | None = None  # the model whose proposal was shown, if any
    replaces_id: int | None = None  # the label version this one supersedes, if any
    comment: str | None = None


@dataclass(frozen=True)
class LabelVersion:
    """One immutable version of an item's label."""

    id: int
    item_id: int
    annotator: str
    source: LabelSource
    class_index: int | None
    mask_hash: str | None
    started_at: float | None
    submitted_at: float
    seconds_spent: float | None
    model_version_id: int | None
    replaces_id: int | None
    comment: str | None


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    status: ModelStatus
    created_at: float
    checkpoint: str | None
    metrics: Mapping[str, float]
    trained_on: tuple[int, ...]  # label version ids
    params: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Prediction:
    """A model's output for one item. ``probs``: (C,) for classification; masks are blob hashes."""

    item_id: int
    probs: np.ndarray | None = None
    mask: np.ndarray | None = None
    uncertainty_map: np.ndarray | None = None


@dataclass(frozen=True)
class Round:
    id: int
    strategy: str
    params: Mapping[str, object]
    model_version_id: int | None
    selected: tuple[int, ...]
    status: RoundStatus
    created_at: float
    error: str | None = None


@dataclass(frozen=True)
class Flag:
    """An item flagged by an annotator (unclear, needs an expert), with a comment."""

    id: int
    item_id: int
    annotator: str
    kind: str
    comment: str
    created_at: float


@dataclass(frozen=True)
class Assignment:
    """An item served to an annotator, reserved for them until ``expires_at``."""

    item_id: int
    annotator: str
    served_at: float
    expires_at: float
