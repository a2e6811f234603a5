"""The audit trail: every publish and every read of results, in a chain that shows tampering."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from riskrules.cli import app as cli

from _api_helpers import DAIRY_B, WEIHAI, XINYU, problem_of

runner = CliRunner()


def verify(api, *extra):
    return runner.invoke(cli, ["audit", "verify", "--database-url", api.url, *extra])


def busy(api) -> None:
    """Some history, ten rows: two keys made, seven evaluations of two jurisdictions, one read."""
    w, x = api.as_("system", "weihai"), api.as_("system", "xinyu")
    made = [api.evaluate(WEIHAI, DAIRY_B, w).json()["evaluation_id"] for _ in range(6)]
    api.evaluate(XINYU, {"penalties": 0}, x)
    api.client.get(f"/v1/evaluations/{made[0]}", headers=w)


def sql(api, statement: str, *params) -> None:
    with api.service.store.write() as conn:
        conn.exec_driver_sql(statement.replace("?", "%s") if api.service.store.is_postgres else statement,
                             tuple(params))


def test_an_untouched_log_verifies(fresh):
    api = fresh()
    busy(api)
    result = verify(api)
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
    r = api.client.get("/v1/audit/verify", headers=api.as_("auditor", "*"))
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["rows"] == 11   # and the auditor's key


def test_an_edited_row_is_found(fresh):
    api = fresh()
    busy(api)
    sql(api, "UPDATE audit_log SET actor_name = ? WHERE id = ?", "somebody else", 7)
    result = verify(api)
    assert result.exit_code == 1
    assert "row 7" in result.output and "edited" in result.output
    r = api.client.get("/v1/audit/verify", headers=api.as_("auditor", "*")).json()
    assert r["ok"] is False and r["first_bad_row"]["id"] == 7


def test_an_edited_row_with_a_recomputed_hash_is_found_by_the_next_link(fresh):
    from api.audit import link_hash
    api = fresh()
    busy(api)
    with api.service.store.reader() as conn:
        row = dict(conn.exec_driver_sql("SELECT * FROM audit_log WHERE id = 5").mappings().one())
    row["actor_name"] = "somebody else"
    forged = link_hash(row["prev_hash"], row)
    sql(api, "UPDATE audit_log SET actor_name = ?, hash = ? WHERE id = 5", row["actor_name"], forged)
    result = verify(api)
    assert result.exit_code == 1 and "row 6 does not link to row 5" in result.output


def test_a_deleted_row_is_found(fresh):
    api = fresh()
    busy(api)
    sql(api, "DELETE FROM audit_log WHERE id = ?", 6)
    result = verify(api)
    assert result.exit_code == 1 and "row 7" in result.output and "deleted" in result.output


def test_a_row_deleted_from_the_end_is_found(fresh):
    api = fresh()
    busy(api)
    sql(api, "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)")
    result = verify(api)
    assert result.exit_code == 1 and "deleted from the end" in result.output


def test_an_inserted_row_is_found(fresh):
    api = fresh()
    busy(api)
    sql(api, "UPDATE audit_log SET id = id + 1000 WHERE id > 4")        # make room after row 4
    sql(api, "INSERT INTO audit_log (id, at, actor_id, actor_name, role, action, jurisdiction, detail, prev_hash, hash)"
             " SELECT 5, at, actor_id, actor_name, role, action, jurisdiction, detail, hash, hash FROM audit_log"
             " WHERE id = 4")
    result = verify(api)
    assert result.exit_code == 1 and "row 5" in result.output


def test_a_row_forged_onto_the_end_is_found(fresh):
    from api.audit import link_hash
    api = fresh()
    busy(api)
    with api.service.store.reader() as conn:
        last = dict(conn.exec_driver_sql("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1").mappings().one())
    fake = dict(last, id=last["id"] + 1, prev_hash=last["hash"], actor_name="nobody")
    fake["hash"] = link_hash(fake["prev_hash"], fake)
    columns = ", ".join(fake)
    sql(api, f"INSERT INTO audit_log ({columns}) VALUES ({', '.join('?' * len(fake))})", *fake.values())
    result = verify(api)
    assert result.exit_code == 1 and "added to the end" in result.output


def test_a_log_cut_back_with_its_head_is_caught_against_a_recorded_head(fresh):
    api = fresh()
    busy(api)
    head = verify(api).output.split("head ")[1].strip()
    assert verify(api, "--head", head).exit_code == 0
    with api.service.store.reader() as conn:
        prev = conn.exec_driver_sql("SELECT hash FROM audit_log WHERE id = 6").scalar_one()
    sql(api, "DELETE FROM audit_log WHERE id > 6")
    sql(api, "UPDATE audit_head SET last_id = 6, last_hash = ?", prev)
    assert verify(api).exit_code == 0                 # consistent on its own …
    result = verify(api, "--head", head)               # … but not with the head recorded before
    assert result.exit_code == 1 and "rewritten or cut" in result.output


def test_an_auditor_of_weihai_reads_only_weihai_entries_page_by_page(api):
    busy(api)
    h = api.as_("auditor", "weihai")
    page = api.client.get("/v1/audit", params={"limit": 2}, headers=h).json()
    assert len(page["entries"]) == 2 and page["next_after_id"] == page["entries"][-1]["id"]
    rest = api.client.get("/v1/audit", params={"after_id": page["next_after_id"], "limit": 1000}, headers=h).json()
    entries = page["entries"] + rest["entries"]
    assert {e["jurisdiction"] for e in entries} == {"weihai"}
    assert rest["next_after_id"] is None
    assert {"evaluate", "read_evaluation"} <= {e["action"] for e in entries}
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 5000}, {"after_id": -1}])
def test_a_bad_page_request_is_422(api, params):
    problem_of(api.client.get("/v1/audit", params=params, headers=api.as_("auditor", "*")), 422, "invalid-request")
