"""The store's interface: what every backend (SQLite now, PostgreSQL later) implements.

Kept small on purpose. Every write is one transaction: it either happens whole or not at all, and
it is durable when the call returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from workbench.store._records import (
    Assignment,
    Flag,
    Item,
    LabelSubmission,
    LabelVersion,
    ModelStatus,
    ModelVersion,
    NewItem,
    Prediction,
    ProjectConfig,
    Round,
    RoundStatus,
)


class ProjectStore(Protocol):
    """A project's state: items, label versions, models, predictions, rounds and assignments."""

    config: ProjectConfig

    # items -------------------------------------------------------------------------------
    def add_items(self, items: Sequence[NewItem]) -> list[int]:
        """Add items in one transaction; returns their ids. A duplicate key fails the whole call."""
        ...

    def add_items_with_labels(
        self, items: Sequence[NewItem], labels: Sequence[LabelSubmission | None]
    ) -> list[int]:
        """Items and their first labels (``labels[i]`` for ``items[i]``, or None) in one
        transaction: an interrupted import adds nothing."""
        ...

    def get_item(self, item_id: int) -> Item: ...

    def find_item(self, key: str) -> Item | None: ...

    def list_items(self, split: str | None = None) -> list[Item]: ...

    # labels ------------------------------------------------------------------------------
    def submit_label(self, submission: LabelSubmission) -> LabelVersion:
        """Write a new immutable label version (and end the annotator's assignment)."""
        ...

    def submit_labels(self, submissions: Sequence[LabelSubmission]) -> list[LabelVersion]:
        """Many label versions in one transaction (imports)."""
        ...

    def current_label(
        self, item_id: int, *, include_ground_truth: bool = False
    ) -> LabelVersion | None:
        """The newest label version of an item (hidden ground truth excluded unless asked)."""
        ...

    def label_history(self, item_id: int) -> list[LabelVersion]: ...

    def current_labels(
        self, *, split: str | None = None, include_ground_truth: bool = False
    ) -> list[LabelVersion]:
        """The newest label version of every labelled item."""
        ...

    def get_mask(self, mask_hash: str) -> np.ndarray: ...

    # flags -------------------------------------------------------------------------------
    def flag_item(self, item_id: int, annotator: str, kind: str, comment: str = "") -> Flag: ...

    def list_flags(self, item_id: int | None = None) -> list[Flag]: ...

    # models, predictions, scores ---------------------------------------------------------
    def add_model_version(
        self, name: str, params: Mapping[str, object] | None = None, trained_on: Iterable[int] = ()
    ) -> ModelVersion: ...

    def update_model_version(
        self,
        model_version_id: int,
        *,
        status: ModelStatus,
        checkpoint: str | None = None,
        metrics: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> ModelVersion: ...

    def list_model_versions(self) -> list[ModelVersion]: ...

    def add_predictions(self, model_version_id: int, predictions: Iterable[Prediction]) -> None: ...

    def get_prediction(self, model_version_id: int, item_id: int) -> Prediction | None: ...

    def add_scores(
        self, model_version_id: int, strategy: str, scores: Mapping[int, float]
    ) -> None: ...

    def get_scores(self, model_version_id: int, strategy: str) -> dict[int, float]: ...

    # rounds ------------------------------------------------------------------------------
    def start_round(
        self, strategy: str, params: Mapping[str, object], model_version_id: int | None
    ) -> Round: ...

    def finish_round(
        self,
        round_id: int,
        *,
        status: RoundStatus,
        selected: Sequence[int] = (),
        error: str | None = None,
    ) -> Round: ...

    def list_rounds(self) -> list[Round]: ...

    # serving -----------------------------------------------------------------------------
    def next_item(
        self,
        annotator: str,
        *,
        lease_seconds: float = 900.0,
        split: str | None = None,
        exclude: Sequence[int] = (),
    ) -> Item | None:
        """Reserve and return the next unlabelled item for this annotator.

        Order: the latest finished round's selection first (in its order), then the latest
        ready model's scores (highest first), then item id. Never returns an item reserved by
        another annotator whose lease has not expired; an annotator who asks again gets the item
        they already hold. Items in ``exclude`` (e.g. just skipped) are passed over.
        """
        ...

    def peek_next(
        self, annotator: str, *, split: str | None = None, exclude: Sequence[int] = ()
    ) -> Item | None:
        """The item ``next_item`` would serve now, without reserving it."""
        ...

    def release(self, item_id: int, annotator: str) -> None: ...

    def list_assignments(self) -> list[Assignment]: ...

    def close(self) -> None: ...
