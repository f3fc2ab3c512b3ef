"""The project store: the only place that writes project state.

``create_project`` / ``open_project`` give a :class:`SQLiteStore`, which implements the
:class:`ProjectStore` protocol; everything crossing it is a plain record from this package.
"""

from workbench.store._interface import ProjectStore
from workbench.store._project import checkpoints_dir, create_project, open_project
from workbench.store._records import (
    Assignment,
    Flag,
    Item,
    LabelSource,
    LabelSubmission,
    LabelVersion,
    ModelStatus,
    ModelVersion,
    NewItem,
    Prediction,
    ProjectConfig,
    Round,
    RoundStatus,
    Task,
)
from workbench.store._sqlite import SQLiteStore
from workbench.store._status import project_status

__all__ = [
    "Assignment",
    "Flag",
    "Item",
    "LabelSource",
    "LabelSubmission",
    "LabelVersion",
    "ModelStatus",
    "ModelVersion",
    "NewItem",
    "Prediction",
    "ProjectConfig",
    "ProjectStore",
    "Round",
    "RoundStatus",
    "SQLiteStore",
    "Task",
    "checkpoints_dir",
    "create_project",
    "open_project",
    "project_status",
]
