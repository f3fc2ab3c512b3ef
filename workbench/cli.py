"""The ``workbench`` command: a thin shell over the same objects the notebooks use."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from workbench._cli_output import ProgressBar, console
from workbench.errors import WorkbenchError
from workbench.store import ProjectConfig, Task, create_project, open_project, project_status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except WorkbenchError as error:
        console.print(f"[bold red]error[/] ({error.code}): {error}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: nothing was half-written[/]")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Label medical images with a model in the loop. A project is a folder; "
        "start with 'workbench init', then 'workbench import', then label in JupyterLab.",
        epilog="Example: workbench init proj --task classification --classes normal pneumonia && "
        "workbench import proj pneumoniamnist.npz && workbench status proj",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser("init", help="create an empty project folder")
    init.add_argument("dir", type=Path, help="project folder to create")
    init.add_argument("--task", required=True, choices=[t.value for t in Task])
    init.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="class names in label order (segmentation: 'background' is added "
        "first if missing); default: class0 class1",
    )
    init.add_argument("--name", help="project name (default: the folder name)")
    init.set_defaults(run=_init)

    imp = commands.add_parser(
        "import",
        help="add scans (and their labels) from files or datasets",
        description="SOURCE may be a MedMNIST .npz, an MSD / nnU-Net v2 folder (dataset.json), "
        "a CSV manifest (path[,label][,split]), a DICOM folder, an image folder or one file. "
        "Unreadable records are skipped and reported; the rest is added in one transaction.",
    )
    imp.add_argument("dir", type=Path, help="project folder")
    imp.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    imp.add_argument(
        "--split",
        choices=["train", "val", "test"],
        help="put every item in this split (default: the source's own, else train)",
    )
    group = imp.add_mutually_exclusive_group()
    group.add_argument(
        "--labels-as-ground-truth",
        action="store_true",
        help="hold labels back as hidden ground truth (for 'workbench simulate')",
    )
    group.add_argument("--no-labels", action="store_true", help="ignore labels in the sources")
    imp.add_argument("--json", action="store_true", help="print the import report as JSON")
    imp.set_defaults(run=_import)

    status = commands.add_parser("status", help="what the project holds")
    status.add_argument("dir", type=Path)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_status)

    export = commands.add_parser("export", help="write labels as CSV, PNG, NIfTI or an MSD folder")
    export.add_argument("dir", type=Path)
    export.add_argument("--format", required=True, choices=["csv", "png", "nifti", "msd"])
    export.add_argument("--out", required=True, type=Path, help="new (or empty) output folder")
    export.set_defaults(run=_export)

    demo = commands.add_parser("demo", help="create demo projects from the bundled data")
    demo.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=Path("demo-projects"),
        help="folder for the demo projects (default: ./demo-projects)",
    )
    demo.add_argument(
        "--lab",
        action="store_true",
        help="then open JupyterLab on notebooks/01_annotate.ipynb (127.0.0.1, token)",
    )
    demo.add_argument("--port", type=int, default=8888, help="JupyterLab's port (with --lab)")
    demo.set_defaults(run=_demo)

    from workbench._cli_loop import register_loop_commands
    from workbench._cli_simulate import register_simulate_command

    register_loop_commands(commands)
    register_simulate_command(commands)
    return parser


def _init(args: argparse.Namespace) -> int:
    task = Task(args.task)
    classes = list(args.classes or ["class0", "class1"])
    if task is Task.SEGMENTATION and classes[0].lower() != "background":
        classes.insert(0, "background")
    config = ProjectConfig(
        name=args.name or args.dir.resolve().name, task=task, classes=tuple(classes)
    )
    create_project(args.dir, config).close()
    console.print(
        f"created {task.value} project [bold]{args.dir}[/] with classes {', '.join(classes)}"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from workbench.ingest import LabelPolicy, import_sources

    policy = (
        LabelPolicy.GROUND_TRUTH
        if args.labels_as_ground_truth
        else LabelPolicy.IGNORE
        if args.no_labels
        else LabelPolicy.IMPORT
    )
    with open_project(args.dir) as store, ProgressBar("reading") as advance:
        report = import_sources(
            store, args.sources, split=args.split, labels=policy, progress=advance
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(
            f"added {report.added} items, {report.labels} labels "
            f"({policy.value}); {report.already_present} already in the project"
        )
        for where, why in report.skipped:
            console.print(f"[yellow]skipped[/] {where}: {why}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with open_project(args.dir) as store:
        summary = project_status(store)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    table = Table(title=str(args.dir), show_header=False, box=None)
    for section, value in summary.items():
        for name, shown in _flatten(section, value):
            table.add_row(name, shown)
    Console().print(table)
    return 0


def _flatten(prefix: str, value: object) -> list[tuple[str, str]]:
    """Rows ``a.b.c -> value`` for nested status dictionaries."""
    if isinstance(value, dict) and value:
        return [row for key, sub in value.items() for row in _flatten(f"{prefix}.{key}", sub)]
    if isinstance(value, list | tuple):
        return [(prefix, ", ".join(map(str, value)) or "-")]
    return [(prefix, "-" if value is None or value == {} else str(value))]


def _export(args: argparse.Namespace) -> int:
    from workbench.export import export_labels

    with open_project(args.dir) as store, ProgressBar("exporting") as advance:
        count = export_labels(store, args.format, args.out, progress=advance)
    console.print(f"exported {count} labels as {args.format} to [bold]{args.out}[/]")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from workbench.demo import create_demo_projects, open_lab

    with ProgressBar("importing demo data") as advance:
        projects = create_demo_projects(args.dir, progress=advance)
    for path in projects:
        console.print(f"demo project ready: [bold]{path}[/]")
    if args.lab:
        return open_lab(args.dir, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
