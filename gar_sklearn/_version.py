"""The version of gar_sklearn."""

__version__ = "0.1.0"
