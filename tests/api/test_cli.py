"""`riskrules keys …`: make a key, use it, list it, revoke it."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from riskrules.cli import app as cli

from _api_helpers import DAIRY_B, WEIHAI, problem_of

runner = CliRunner()


def test_a_key_is_printed_once_works_is_listed_without_its_secret_and_can_be_revoked(api):
    made = runner.invoke(cli, ["keys", "create", "--role", "system", "--jurisdiction", "weihai",
                               "--name", "威海双随机平台", "--database-url", api.url])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("rrk_") and len(key) > 40
    h = {"Authorization": f"Bearer {key}"}
    assert api.evaluate(WEIHAI, DAIRY_B, h).status_code == 201

    listed = runner.invoke(cli, ["keys", "list", "--json", "--database-url", api.url])
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "威海双随机平台")
    assert row["role"] == "system" and row["jurisdiction"] == "weihai" and row["revoked_at"] is None
    assert key not in listed.stdout and row["prefix"] == key[:12]

    revoked = runner.invoke(cli, ["keys", "revoke", str(row["id"]), "--database-url", api.url])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    problem_of(api.evaluate(WEIHAI, DAIRY_B, h), 401, "unauthenticated")
    actions = [e["action"] for e in api.client.get("/v1/audit", params={"limit": 1000},
                                                    headers=api.as_("auditor", "*")).json()["entries"]]
    assert "key_create" in actions and "key_revoke" in actions


def test_keys_are_refused_for_an_unknown_role_or_a_bad_jurisdiction(api):
    bad_role = runner.invoke(cli, ["keys", "create", "--role", "root", "--jurisdiction", "weihai",
                                   "--name", "x", "--database-url", api.url])
    assert bad_role.exit_code == 2 and "not a role" in bad_role.output
    bad_place = runner.invoke(cli, ["keys", "create", "--role", "system", "--jurisdiction", "weihai.food",
                                    "--name", "x", "--database-url", api.url])
    assert bad_place.exit_code == 2 and "not a jurisdiction" in bad_place.output
    missing = runner.invoke(cli, ["keys", "revoke", "99999", "--database-url", api.url])
    assert missing.exit_code == 2
