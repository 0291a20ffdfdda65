"""A recipe with a bad field is refused before `ingest` writes anything: one line, exit 1, the store left empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.store.connection import Connection

BAD = [
    ("[images]", 'max_images = "sixty"', "[images] max_images"), ("[images]", "max_images = -1", "[images] max_images"),
    ("[images]", "max_images = 0", "[images] max_images"), ("[run]", 'seed = "zero"', "[run] seed"),
    ("[run]", 'granularities = "all"', "[run] granularities"), ("[model]", 'layers = "fc"', "[model] layers"),
]


@pytest.mark.parametrize("section, line, field", BAD, ids=[b[1] for b in BAD])
def test_ingest_of_a_bad_recipe_writes_nothing(conn: Connection, tmp_path: Path, section: str, line: str,
                                               field: str) -> None:
    tables = {"[model]": ['preset = "digits"', 'weights = "DIGITS_V1"'],
              "[images]": ['source = "digits"'], "[run]": ['class = "3"', "k = 10", "tau = 3", "n_steps = 8"]}
    tables[section].append(line)
    recipe = tmp_path / "bad.toml"
    recipe.write_text("".join(f"{name}\n" + "".join(f"{row}\n" for row in rows) for name, rows in tables.items()))
    before = conn.run("node_counts")
    result = CliRunner().invoke(main, ["ingest", str(recipe), "--data-dir", str(conn.data_dir), "--database",
                                       conn.database, "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert field in result.output and "is not accepted; use" in result.output
    assert conn.run("node_counts") == before and not (tmp_path / "out").exists()
