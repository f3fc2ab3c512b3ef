"""workbench: label medical images with a model in the loop."""

__version__ = "0.1.0"
