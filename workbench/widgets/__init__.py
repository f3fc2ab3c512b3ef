"""Annotation widgets: ``Annotator`` (anywidget) over the plain ``AnnotationSession``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.widgets._edits import Clear, Fill, MaskDiff, Polygon, Stroke
from workbench.widgets._session import AnnotationSession, SessionError, Status

if TYPE_CHECKING:
    from workbench.widgets._annotator import Annotator
    from workbench.widgets._viewer3d import Viewer3D

__all__ = [
    "AnnotationSession",
    "Annotator",
    "Clear",
    "Fill",
    "MaskDiff",
    "Polygon",
    "SessionError",
    "Status",
    "Stroke",
    "Viewer3D",
]


def __getattr__(name: str) -> Any:
    # the widget class imports anywidget; the session does not, so import it only when asked
    if name == "Annotator":
        from workbench.widgets._annotator import Annotator

        return Annotator
    if name == "Viewer3D":
        from workbench.widgets._viewer3d import Viewer3D

        return Viewer3D
    raise AttributeError(name)
