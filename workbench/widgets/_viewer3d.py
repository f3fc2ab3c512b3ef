"""3D context view of a volume and its label overlay, through ipyniivue (NiiVue, offline).

NiiVue loads volumes from files, not arrays: the scan and the mask are written as NIfTI files
under the project's folder (``<project>/viewer3d/``), then handed to an ``ipyniivue.NiiVue``
widget, whose bundled JavaScript needs no network. The view is for looking (multiplanar + 3D
render); masks are edited in the ``Annotator``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.io._image import ScanImage
from workbench.widgets._display import Window

VIEWER_DIR = "viewer3d"


def _write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.nii")
    nib.save(nib.Nifti1Image(np.asarray(array), np.asarray(affine, float)), str(tmp))
    tmp.replace(path)
    return path


class Viewer3D:
    """A volume with its label mask over it, in NiiVue: ``Viewer3D(image, mask, folder).widget``.

    ``image`` is a 3D :class:`ScanImage`; ``mask`` an integer array of the same spatial shape
    (or None); files go under ``folder`` as ``<name>-image.nii`` / ``<name>-mask.nii``.
    """

    def __init__(
        self,
        image: ScanImage,
        mask: np.ndarray | None,
        folder: str | Path,
        *,
        name: str = "item",
        window: Window | None = None,
        height: int = 400,
        mask_opacity: float = 0.5,
    ) -> None:
        if image.ndim_spatial != 3 or image.array.ndim != 3:
            raise ValueError("Viewer3D shows single-channel 3D volumes")
        if mask is not None and tuple(mask.shape) != tuple(image.array.shape):
            raise ValueError(
                f"mask shape {mask.shape} differs from the volume's {image.array.shape}"
            )
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "item"
        self.folder = Path(folder)
        self.image_path = _write_nifti(self.folder / f"{safe}-image.nii", image.array, image.affine)
        self.mask_path = (
            None
            if mask is None
            else _write_nifti(
                self.folder / f"{safe}-mask.nii", np.asarray(mask, np.uint8), image.affine
            )
        )
        self.window = window
        self.height = height
        self.mask_opacity = mask_opacity
        self._widget: Any = None

    @property
    def widget(self) -> Any:
        """The ``ipyniivue.NiiVue`` widget (built on first use)."""
        if self._widget is None:
            try:
                from ipyniivue import NiiVue
            except ImportError as error:  # a core dependency; only a broken install lacks it
                raise ImportError(
                    "Viewer3D needs ipyniivue: pip install 'ipyniivue>=2.4'"
                ) from error
            volume: dict[str, Any] = {"path": str(self.image_path), "colormap": "gray"}
            if self.window is not None:
                volume.update(cal_min=self.window.low, cal_max=self.window.high)
            volumes = [volume]
            if self.mask_path is not None:
                volumes.append(
                    {
                        "path": str(self.mask_path),
                        "colormap": "red",
                        "opacity": self.mask_opacity,
                        "cal_min": 0.5,
                        "cal_max": 1.0,
                    }
                )
            nv = NiiVue(height=self.height)
            nv.load_volumes(volumes)
            self._widget = nv
        return self._widget

    def _ipython_display_(self) -> None:  # pragma: no cover - notebook display hook
        from IPython.display import display

        display(self.widget)
