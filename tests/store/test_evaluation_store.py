"""`evaluate` stores Evaluation nodes linked to their runs, loading a run's bundle when it is not stored."""

from click.testing import CliRunner

from neurflow_graph.cli.evaluation import evaluate


def test_evaluate_stores_one_linked_evaluation_per_run_idempotently(data_dir, database_name, conn,
                                                                    digits_bundle_dir, tmp_path):
    args = ["fidelity", "--bundle", str(digits_bundle_dir), "--out", str(tmp_path), "--samples", "2", "--tau", "2",
            "--quiet", "--data-dir", str(data_dir), "--database", database_name]
    for _ in range(2):
        result = CliRunner().invoke(evaluate, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "stored Evaluation fidelity-" in result.output
    rows = conn.driver.execute_query(
        "MATCH (e:Evaluation)-[:EVALUATES]->(r:Run) RETURN e.kind AS kind, r.id AS run, r.complete AS complete",
        database_=conn.database,
    ).records
    assert [row.data() for row in rows] == [{"kind": "fidelity", "run": rows[0]["run"], "complete": True}]
