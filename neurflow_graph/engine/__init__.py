"""The algorithm: patches, activations, attribution, circuit, groups and the NeurFlow pipeline.

Knows nothing of bundles on disk, stores or command lines (docs/architecture.md).
"""
