"""Models and data sets: presets, the digits models, image sets and the one weights loader.

Kept apart from `engine/`, which holds only the algorithm (docs/architecture.md).
"""
