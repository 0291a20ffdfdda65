"""One root exception and the specific failures a user can act on; every message is one line."""

from __future__ import annotations


class NeurflowGraphError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(NeurflowGraphError, ValueError):
    """A parameter or recipe field has an invalid value."""


class LayerError(ConfigError):
    """A layer name is unknown, repeated, out of forward order, or not a function of the layer below."""


class DataError(NeurflowGraphError):
    """Images are missing, unreadable, or none is predicted as the class."""


class ArtifactError(NeurflowGraphError):
    """A run bundle on disk is incomplete or of an unknown format."""


class StoreError(NeurflowGraphError):
    """The graph store could not be reached, refused the credentials, or failed a query."""


class StoreUnavailable(StoreError):
    """No server answers at the configured address."""


class SchemaVersionError(StoreError):
    """The store was written by an incompatible release of neurflow-graph."""


class QueryError(NeurflowGraphError):
    """An unknown query name or a missing or unexpected query parameter."""


class MissingDependency(NeurflowGraphError, ImportError):
    """An optional package a feature needs is not installed (the message names it and how to install it)."""
