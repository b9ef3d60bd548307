import json

from typer.testing import CliRunner

from infsplign_scene.cli import app

runner = CliRunner()


def test_parse_prints_scene_graph_json():
    result = runner.invoke(app, ["parse", "a cat left of a dog"])
    assert result.exit_code == 0
    graph = json.loads(result.stdout)
    assert graph["relations"][0]["predicate"] == "left_of"


def test_parse_error_exit_code_and_message():
    result = runner.invoke(app, ["parse", "a cat left of", "--backend", "rules"])
    assert result.exit_code == 2
    assert "ends too early" in result.output
    assert runner.invoke(app, ["parse", "a cat left of"]).exit_code == 2


def test_check_exit_status_follows_consistency(tmp_path):
    cycle = "a cat left of a dog, a dog left of a bird, a bird left of the cat"
    assert runner.invoke(app, ["check", "a cat left of a dog"]).exit_code == 0
    kept = runner.invoke(app, ["check", cycle])
    assert kept.exit_code == 1 and "conflicts:" in kept.stdout
    dropped = runner.invoke(app, ["check", cycle, "--policy", "drop", "--json"])
    assert dropped.exit_code == 0 and len(json.loads(dropped.stdout)["dropped"]) == 1
    assert runner.invoke(app, ["check", cycle, "--policy", "error"]).exit_code == 2
    path = tmp_path / "g.json"
    path.write_text(
        json.dumps(
            {
                "objects": [{"id": "a", "name": "cat"}, {"id": "b", "name": "dog"}],
                "relations": [{"subject": "a", "predicate": "above", "object": "b"}],
            }
        )
    )
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0


def test_schema_and_help():
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    assert "objects" in schema["properties"]
    help_text = runner.invoke(app, ["--help"]).stdout
    assert "parse" in help_text and "check" in help_text
