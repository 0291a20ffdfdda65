"""The on-disk artifact of one run: run.json (typed as RunMeta), Parquet tables and thumbnails."""
