"""Running migrations (real SQLite, a real subprocess) and the release steps around them, without AWS."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bgtool.aws.session import Aws
from bgtool.cli.reports import database_markdown
from bgtool.config.schema import Color, load_environment
from bgtool.database.check import Database, MigrationRunFailed
from bgtool.database.ledger import applied_from_history
from bgtool.errors import BgtoolError, ConfigError
from bgtool.events import Collector, Note
from bgtool.records.history import History
from bgtool.release.database import guard_and_migrate, records, rollback_problems
from tests.helpers import copy_project, edit_yaml

EXPAND = {"V1__users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, nickname TEXT);\n"
                           "INSERT INTO users (nickname) VALUES ('ann');\n",
          "V2__display.sql": "ALTER TABLE users ADD COLUMN display TEXT DEFAULT 'x';\n"}
CONTRACT = {"V3__drop_nickname.sql": "-- bgtool:contract-after 1.1.0\nALTER TABLE users DROP COLUMN nickname;\n"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    env = root / "environments/local.yaml"
    edit_yaml(env, "backend: s3", "backend: local")
    edit_yaml(env, "migrations: db/migrations", "migrations: db/app")
    (root / "db/app").mkdir(parents=True)
    return root


def add(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / "db/app" / name).write_text(text)


def workspace(root: Path, *, blue: str = "1.0.0", green: str = "1.0.0") -> Any:
    """What the release steps use of a workspace: files, config, AWS access (unused), events."""
    edit_yaml(root / "environments/local.yaml", "version: 1.0.0", f"version: {blue}")
    edit_yaml(root / "environments/local.yaml", "version: 1.0.0", f"version: {green}")
    config = load_environment(root, "local").config
    return SimpleNamespace(root=root, env="local", config=config, aws=Aws(config), emit=Collector())


def columns(root: Path) -> list[str]:
    with sqlite3.connect(root / ".bgtool/db/local.sqlite") as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(users)")]


def test_the_embedded_default_runs_pending_migrations_in_sqlite_and_records_them(root: Path) -> None:
    add(root, EXPAND)
    ws = workspace(root)
    db = Database(root, "local", ws.config, ws.aws)
    report = db.check([])
    assert [m.label for m in report.pending] == ["1", "2"] and report.verdict.ok
    ran = db.migrate(report, "1.1.0")
    assert [(a.version, a.kind, a.release) for a in ran] == [("1", "expand", "1.1.0"), ("2", "expand", "1.1.0")]
    assert columns(root) == ["id", "nickname", "display"]
    assert [a.version for a in db.applied([])] == ["1", "2"]
    assert db.check([]).pending == []


def test_a_failing_migration_is_rolled_back_and_the_earlier_ones_stay_recorded(root: Path) -> None:
    add(root, {**EXPAND, "V2__display.sql": "ALTER TABLE users ADD COLUMN display TEXT;\n"
                                            "INSERT INTO missing_table VALUES (1);\n"})
    ws = workspace(root)
    db = Database(root, "local", ws.config, ws.aws)
    with pytest.raises(MigrationRunFailed) as err:
        db.migrate(db.check([]), "1.1.0")
    assert "db/app/V2__display.sql:2" in err.value.message and "no such table: missing_table" in err.value.message
    assert [a.version for a in err.value.ran] == ["1"]
    assert columns(root) == ["id", "nickname"]  # V2's first statement was rolled back with it
    assert [a.version for a in db.applied([])] == ["1"]


def test_deploy_step_refuses_a_contract_before_anything_changes(root: Path) -> None:
    add(root, {**EXPAND, **CONTRACT})
    ws = workspace(root, blue="1.0.0", green="1.0.0")
    before = (root / "environments/local.yaml").read_text()
    history = History(root, "local", ws.config, ws.aws)
    with pytest.raises(BgtoolError) as err:
        guard_and_migrate(ws, Color.GREEN, "1.1.0", history)
    text = str(err.value)
    assert "db/app/V3__drop_nickname.sql:2: ALTER TABLE users DROP COLUMN nickname" in text
    assert "still needs the old shape: live blue 1.0.0 (predates 1.1.0)" in text
    assert "safe way: 1) release code that no longer reads or writes the column" in text
    assert not (root / ".bgtool/db/local.sqlite").exists()  # not even the expand ones ran
    assert (root / "environments/local.yaml").read_text() == before
    [record] = history.read()
    assert (record.operation, record.result, record.versions["after"]) == ("deploy", "refused", "1.1.0")


def test_deploy_step_runs_migrations_records_them_and_rollback_respects_the_contract(root: Path) -> None:
    add(root, {**EXPAND, **CONTRACT})
    ws = workspace(root, blue="1.1.0", green="1.0.0")
    history = History(root, "local", ws.config, ws.aws)
    details = guard_and_migrate(ws, Color.GREEN, "1.2.0", history)
    assert details == {"migrations": ["1", "2", "3"]}
    assert columns(root) == ["id", "display"]
    [record] = history.read()
    assert (record.operation, record.result) == ("migrate", "succeeded")
    assert [a["version"] for a in record.details["ran"]] == ["1", "2", "3"]
    assert any(isinstance(e, Note) and "V3__drop_nickname.sql applied (contract)" in e.text for e in ws.emit.events)
    # green still runs 1.0.0 in this file: code that predates the contract that ran
    [problem] = rollback_problems(ws, Color.GREEN, history)
    assert "green runs 1.0.0, which predates contract migration db/app/V3__drop_nickname.sql" in problem
    assert rollback_problems(ws, Color.BLUE, history) == []
    with pytest.raises(BgtoolError, match=r"removed what versions before 1\.1\.0 use"):
        guard_and_migrate(ws, Color.GREEN, "1.0.1", history)  # an old release on the contracted schema


def test_contract_after_naming_an_unknown_version_is_bad_input(root: Path) -> None:
    add(root, {"V1__drop.sql": "-- bgtool:contract-after 7.0.0\nALTER TABLE users DROP COLUMN nickname;\n"})
    ws = workspace(root)
    with pytest.raises(BgtoolError, match=r"db/app/V1__drop\.sql:1: .*7\.0\.0.* no color, deploy or history"):
        guard_and_migrate(ws, Color.GREEN, "1.1.0", History(root, "local", ws.config, ws.aws))
    assert not (root / ".bgtool/db/local.sqlite").exists()


def test_migrate_command_runs_without_a_shell_with_the_connection_from_the_environment(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add(root, EXPAND)
    seen = root / "seen.json"
    script = ("import json, os, sys; json.dump({'argv': sys.argv[1:], "
              "'pending': os.environ['BGTOOL_PENDING_MIGRATIONS'], "
              f"'url': os.environ['APP_DB']}}, open({str(seen)!r}, 'w'))")
    command = json.dumps([sys.executable, "-c", script, "--url=${APP_DB}", "two words; rm -rf /"])
    edit_yaml(root / "environments/local.yaml", "  dialect: sqlite\n",
              f"  dialect: sqlite\n  migrate_command: {command}\n  connection_env: APP_DB\n")
    monkeypatch.setenv("APP_DB", "postgres://db.internal/app")
    ws = workspace(root, blue="1.1.0")
    history = History(root, "local", ws.config, ws.aws)
    assert guard_and_migrate(ws, Color.GREEN, "1.2.0", history) == {"migrations": ["1", "2"]}
    got = json.loads(seen.read_text())
    assert got["argv"] == ["--url=postgres://db.internal/app", "two words; rm -rf /"]
    assert got["pending"] == "db/app/V1__users.sql,db/app/V2__display.sql"
    assert [a.version for a in applied_from_history(records(history))] == ["1", "2"]  # bgtool's own record
    assert guard_and_migrate(ws, Color.GREEN, "1.2.0", history) == {"migrations": []}


def test_a_real_account_needs_a_migrate_command_and_sqlite_needs_the_sqlite_dialect(root: Path) -> None:
    add(root, EXPAND)
    config = load_environment(root, "local").config
    real = config.model_copy(update={"aws": config.aws.model_copy(update={"endpoint": None})})
    with pytest.raises(BgtoolError, match="migrate_command is required on a real AWS account"):
        Database(root, "local", real, Aws(real))
    pg = config.model_copy(update={"database": config.database.model_copy(update={"dialect": "postgres"})})
    with pytest.raises(BgtoolError, match="applies migrations to SQLite"):
        Database(root, "local", pg, Aws(pg))


def test_an_unknown_dialect_is_reported_with_file_and_line(root: Path) -> None:
    edit_yaml(root / "environments/local.yaml", "dialect: sqlite", "dialect: postgress")
    with pytest.raises(ConfigError) as err:
        load_environment(root, "local")
    [problem] = err.value.problems
    assert problem.startswith("line ") and "database.dialect: unknown SQL dialect 'postgress'" in problem


def test_plan_summary_shows_the_verdict(root: Path) -> None:
    add(root, {**EXPAND, **CONTRACT})
    ws = workspace(root)
    refused = database_markdown(Database(root, "local", ws.config, ws.aws).check([{"versions": {"g": "1.1.0"}}]))
    assert "❌ **refused**" in refused and "| db/app/V3__drop_nickname.sql:2 |" in refused
    assert "live blue 1.0.0 (predates 1.1.0)" in refused
    (root / "db/app/V3__drop_nickname.sql").unlink()
    assert "✅ guard passed; pending: `1` expand, `2` expand" in database_markdown(
        Database(root, "local", ws.config, ws.aws).check([]))
    assert "❌ `bgtool db check` failed: boom" in database_markdown(None, "boom")


def test_rollback_cannot_be_proven_safe_when_the_record_is_unreadable(root: Path) -> None:
    add(root, EXPAND)
    edit_yaml(root / "environments/local.yaml", "dialect: sqlite", "dialect: postgres")  # no runner for it
    ws = workspace(root)
    [problem] = rollback_problems(ws, Color.GREEN, History(root, "local", ws.config, ws.aws))
    assert problem.startswith("cannot tell whether a contract migration ran that green 1.0.0 predates")
