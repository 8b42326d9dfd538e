"""The database guard on the embedded AWS with the real terraform binary, on an environment of its own.

The tests run in file order and build on each other: `dbg` starts blue-live with 1.0.0 on both
colors and a SQLite database under .bgtool/; an expand release (1.1.0 to green) runs its
migrations while blue keeps serving; a contract migration (contract-after 1.1.0) released while
blue 1.0.0 is live is refused before anything changes; after the switch to green 1.1.0 the same
contract goes out with 1.2.0 to blue.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bgtool.config.schema import load_environment
from bgtool.records.history import History
from tests.helpers import edit_yaml
from tests.integration.conftest import Project

ENV = "local"
EXPAND = {
    "V1__create_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, nickname TEXT);\n"
                            "INSERT INTO users (nickname) VALUES ('ann');\n",
    "V2__add_display_name.sql": "-- expand: old code does not know the column and keeps inserting rows\n"
                                "ALTER TABLE users ADD COLUMN display_name TEXT DEFAULT 'anonymous';\n",
}
CONTRACT = {
    "V3__drop_nickname.sql": "-- 1.1.0 reads display_name and no longer touches nickname\n"
                             "-- bgtool:contract-after 1.1.0\n"
                             "ALTER TABLE users DROP COLUMN nickname;\n",
}


@pytest.fixture(scope="module")
def dbg(applied: Project) -> Project:
    edit_yaml(applied.root / f"environments/{ENV}.yaml", "migrations: db/migrations", f"migrations: db/{ENV}")
    write_migrations(applied, EXPAND)
    return applied


def write_migrations(project: Project, files: dict[str, str]) -> None:
    directory = project.root / "db" / ENV
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def database(project: Project) -> Path:
    return project.root / f".bgtool/db/{ENV}.sqlite"


def columns(project: Project) -> list[str]:
    with sqlite3.connect(database(project)) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(users)")]


def ran(project: Project) -> list[str]:
    with sqlite3.connect(database(project)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def history(project: Project) -> History:
    loaded = load_environment(project.root, ENV, endpoint_override=project.endpoint)
    return History(project.root, ENV, loaded.config, project.aws(ENV))


def status(project: Project) -> dict:
    return json.loads(project.ok("status", ENV, "--json").stdout)


def test_expand_migrations_run_with_the_new_version_while_the_old_color_serves(dbg: Project) -> None:
    check = dbg.ok("db", "check", ENV, "--version", "1.1.0", "--json")
    doc = json.loads(check.stdout)
    assert doc["ok"] and [m["state"] for m in doc["migrations"]] == ["pending", "pending"]
    assert not database(dbg).exists()  # the check runs nothing

    deployed = json.loads(dbg.ok("deploy", ENV, "1.1.0", "--yes", "--json").stdout)
    assert deployed["color"] == "green" and deployed["version"] == "1.1.0"
    assert ran(dbg) == ["1", "2"]
    assert columns(dbg) == ["id", "nickname", "display_name"]
    last = history(dbg).last("deploy")
    assert last is not None and last.result == "succeeded" and last.details["migrations"] == ["1", "2"]

    now = status(dbg)
    assert now["live_color"] == "blue" and now["listeners"][0]["weights"] == {"blue": 100, "green": 0}
    blue = now["colors"]["blue"]
    assert blue["versions_live"] == ["1.0.0"] and blue["healthy_targets"] == blue["desired"] > 0
    with sqlite3.connect(database(dbg)) as conn:  # what 1.0.0 reads is still there
        assert conn.execute("SELECT nickname FROM users").fetchall() == [("ann",)]


def test_a_contract_released_too_early_is_refused_before_anything_changes(dbg: Project) -> None:
    write_migrations(dbg, CONTRACT)
    env_file = dbg.root / f"environments/{ENV}.yaml"
    before = env_file.read_text()
    green_before = status(dbg)["colors"]["green"]["asg_names"]

    check = dbg.run("db", "check", ENV, "--version", "1.2.0", "--json")
    assert check.returncode == 1
    [blocker] = json.loads(check.stdout)["verdict"]["blockers"]
    assert blocker["migration"] == f"db/{ENV}/V3__drop_nickname.sql" and blocker["line"] == 3

    refused = dbg.run("deploy", ENV, "1.2.0", "--yes")
    assert refused.returncode == 1
    err = " ".join(refused.stderr.split())
    assert f"db/{ENV}/V3__drop_nickname.sql:3: ALTER TABLE users DROP COLUMN nickname" in err
    assert "not backward compatible: old code still reads or writes this column" in err
    assert "still needs the old shape: live blue 1.0.0 (predates 1.1.0)" in err
    assert "safe way: 1) release code that no longer reads or writes the column" in err

    assert env_file.read_text() == before
    assert ran(dbg) == ["1", "2"] and "nickname" in columns(dbg)
    assert status(dbg)["colors"]["green"]["asg_names"] == green_before  # green was not applied
    last = history(dbg).read()[-1]
    assert (last.operation, last.result, last.versions["after"]) == ("deploy", "refused", "1.2.0")


def test_the_contract_runs_once_both_colors_moved_past_it(dbg: Project) -> None:
    dbg.ok("switch", ENV, "--yes", "--steps", "100", "--bake", "0", "--monitor", "0", "--accept-inconclusive")
    assert status(dbg)["live_color"] == "green"

    deployed = json.loads(dbg.ok("deploy", ENV, "1.2.0", "--yes", "--json").stdout)
    assert deployed["color"] == "blue" and deployed["version"] == "1.2.0"
    assert ran(dbg) == ["1", "2", "3"]
    assert columns(dbg) == ["id", "display_name"]
    last = history(dbg).last("deploy")
    assert last is not None and last.result == "succeeded" and last.details["migrations"] == ["3"]
    migrate = history(dbg).last("migrate")
    assert migrate is not None and [m["contract_after"] for m in migrate.details["ran"]] == ["1.1.0"]
    doc = json.loads(dbg.ok("db", "check", ENV, "--json").stdout)
    assert doc["ok"] and doc["verdict"]["pending"] == []
