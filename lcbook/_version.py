"""The package version (one place; written in export headers and records)."""

__version__ = "0.1.0"
