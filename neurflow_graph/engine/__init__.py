"""The algorithm: patches, activations, attribution, circuit, groups and the NeurFlow pipeline, and the run record
it produces (``meta.RunMeta``, with the run's parameters in ``params``; both torch-free).

Knows nothing of files on disk, stores or command lines (docs/architecture.md): the record becomes run.json's
text here, and ``bundle/`` writes it.
"""
