"""A JSON-ready summary of a project (``workbench status --json``), for any ProjectStore."""

from __future__ import annotations

from collections import Counter
from typing import Any

from workbench.store._interface import ProjectStore
from workbench.store._records import LabelSource, ModelStatus, Task


def project_status(store: ProjectStore) -> dict[str, Any]:
    """Counts per split, class and label source; flags, rounds, model versions, live leases.

    ``labelled`` counts items with a label other than hidden ground truth;
    ``ground_truth_pending`` counts items whose newest version is hidden ground truth (in a
    simulation, items the oracle can still answer). ``by_class`` is filled for classification
    projects (segmentation masks are not opened for a status call).
    """
    config = store.config
    items = store.list_items()
    split_of = {item.id: item.split for item in items}
    labels = store.current_labels()
    newest_any = store.current_labels(include_ground_truth=True)
    flags = store.list_flags()
    rounds = store.list_rounds()
    models = store.list_model_versions()
    ready = [m for m in models if m.status is ModelStatus.READY]

    by_class: dict[str, int] = {}
    if config.task is Task.CLASSIFICATION:
        counted = Counter(lv.class_index for lv in labels)
        by_class = {name: counted.get(n, 0) for n, name in enumerate(config.classes)}
    return {
        "project": {
            "name": config.name,
            "task": config.task.value,
            "classes": list(config.classes),
            "created_at": config.created_at,
        },
        "items": {"total": len(items), "by_split": _sorted(Counter(split_of.values()))},
        "labelled": {
            "total": len(labels),
            "by_split": _sorted(Counter(split_of[lv.item_id] for lv in labels)),
            "by_class": by_class,
            "by_source": _sorted(Counter(lv.source.value for lv in labels)),
        },
        "unlabelled": len(items) - len(labels),
        "ground_truth_pending": sum(lv.source is LabelSource.GROUND_TRUTH for lv in newest_any),
        "flags": {"total": len(flags), "by_kind": _sorted(Counter(f.kind for f in flags))},
        "rounds": {
            "total": len(rounds),
            "by_status": _sorted(Counter(r.status.value for r in rounds)),
            "latest": None
            if not rounds
            else {
                "id": rounds[-1].id,
                "strategy": rounds[-1].strategy,
                "status": rounds[-1].status.value,
                "selected": len(rounds[-1].selected),
            },
        },
        "model_versions": {
            "total": len(models),
            "by_status": _sorted(Counter(m.status.value for m in models)),
            "latest_ready": None
            if not ready
            else {
                "id": ready[-1].id,
                "name": ready[-1].name,
                "metrics": dict(ready[-1].metrics),
                "trained_on": len(ready[-1].trained_on),
            },
        },
        "assignments": {"live": len(store.list_assignments())},
    }


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}
