"""The package version, in one place (imported by whoever records it: run.json, the store's schema)."""

__version__ = "0.1.0"
