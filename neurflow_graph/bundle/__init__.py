"""The on-disk artifact of one run: run.json (the run record, `engine.meta.RunMeta`), Parquet tables and thumbnails."""
