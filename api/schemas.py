"""Request and response shapes, one family per resource, each with an example for OpenAPI.

Evaluation bodies are read by `deps.json_body` (orjson, no per-field model on the hot path) and
checked by `evaluations.parse_item`; their schemas are still declared here, so OpenAPI and the
docs show them and schemathesis can generate requests from them.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

# ---- examples (weihai.food_production, the policy in the repository) -------------------------
WEIHAI_INPUTS = {"self_discipline": "一般", "inspection_issues": 1, "failed_samples": 0, "penalties": 1,
                 "sales_channel": "经销", "traceability": True, "production_state": "正常生产",
                 "product_category": "乳制品", "consumers": "一般人群"}
EVALUATION_REQUEST_EXAMPLE = {"enterprise_id": "91371000MA3C000001", "inputs": WEIHAI_INPUTS}
RESULT_EXAMPLE = {
    "policy": {"id": "weihai.food_production", "version": "2021.09",
               "sha256": "2f0c…", "effective": "2021-09-16"},
    "as_of": "2024-06-30", "score": "47.6", "grade": "B", "grade_label": "中低风险", "base_grade": "B",
    "decided_by": ["score 47.6 → B (35 <= score < 50)"], "overrides": [],
    "measures": [{"name": "coverage", "type": "ratio", "label": "全覆盖检查", "op": "exact", "value": "1",
                  "basis": "附件二·一是：在全覆盖检查的基础上"},
                 {"name": "routine_checks", "type": "count", "label": "日常检查次数", "op": "min", "value": 2,
                  "per": {"n": 1, "unit": "year"}, "basis": "附件二·一是：B级日常检查不少于2次"}],
    "alerts": [], "completeness": {"collected": 9, "total": 9, "ratio": "1.0000"},
}
EVALUATION_EXAMPLE = {"evaluation_id": "3f6c2a9e0b8d4d27a1c5e7f9b2d4c6a8", "enterprise_id": "91371000MA3C000001",
                      "input_sha256": "9b1d…", "result": RESULT_EXAMPLE}
DIAGNOSTIC_EXAMPLE = {"code": "weights_sum", "severity": "error",
                      "message": "the weights of group `credit` add up to 90%, not 100%",
                      "file": "submitted.rules", "line": 24, "column": 5, "end_line": 24, "end_column": 40,
                      "help": "make the weights of the group's indicators add up to 100%"}
POLICY_TEXT_EXAMPLE = """policy weihai.demo {
  title "示例" version "1" effective 2025-01-01
  grades A "低风险", B "高风险"
  input on_list : bool "列入严重违法失信名单"
  grade = …
}"""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- evaluations -----------------------------------------------------------------------------
MAX_ENTERPRISE_ID = 64      # characters of a caller's enterprise id, in every request format


class EvaluationRequest(_Model):
    """One enterprise: its inputs, named as the policy names them, and an optional id of yours."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EVALUATION_REQUEST_EXAMPLE]})
    enterprise_id: Optional[str] = Field(None, max_length=MAX_ENTERPRISE_ID,
                                         description="your id of the enterprise (e.g. 统一社会信用代码); "
                                                     "kept with the evaluation record")
    inputs: dict[str, Any] = Field(description="the enterprise's inputs; null or absent means no data")


class Evaluation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVALUATION_EXAMPLE]})
    evaluation_id: str
    enterprise_id: Optional[str] = None
    input_sha256: str = Field(description="sha256 of the inputs as canonical JSON (sorted keys, no spaces, UTF-8)")
    result: dict[str, Any] = Field(description="grade, score, measures, overrides, alerts, completeness, the policy "
                                               "version that decided, `decided_by`, and `explanation` when asked")


class BatchError(BaseModel):
    type: str
    title: str
    detail: str
    errors: list[dict[str, Any]] = []


class BatchItemResult(BaseModel):
    """One line of a batch answer: a result, or the error of that record alone."""
    index: int
    enterprise_id: Optional[str] = None
    evaluation_id: Optional[str] = None
    input_sha256: Optional[str] = None
    result: Optional[dict[str, Any]] = None
    error: Optional[BatchError] = None


class BatchSummary(BaseModel):
    records: int
    evaluated: int
    refused: int


class BatchResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "batch_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
        "summary": {"records": 2, "evaluated": 1, "refused": 1},
        "results": [
            {"index": 0, "enterprise_id": "91371000MA3C000001", "evaluation_id": "c0ffee00c0ffee00c0ffee00c0ffee00.0",
             "input_sha256": "9b1d…", "result": RESULT_EXAMPLE},
            {"index": 1, "enterprise_id": "91371000MA3C000002", "evaluation_id": "c0ffee00c0ffee00c0ffee00c0ffee00.1",
             "input_sha256": "77aa…", "error": {"type": "https://riskrules.dev/problems/invalid-input",
                                                  "title": "the record cannot be evaluated",
                                                  "detail": "inputs.penalties: expected a whole number (a count)",
                                                  "errors": [{"loc": ["inputs", "penalties"], "type": "wrong_type",
                                                              "msg": "expected a whole number (a count)",
                                                              "input": "two"}]}}]}]})
    batch_id: str
    summary: BatchSummary
    results: list[BatchItemResult]


# ---- policies --------------------------------------------------------------------------------
class VersionSummary(BaseModel):
    version: str
    sha256: str
    effective: str
    title: str
    origin: str = Field(description="`file` (the policy tree) or `published` (through this API)")
    in_force: bool = Field(description="the version that decides an evaluation today")
    published_at: Optional[str] = None


POLICY_SUMMARY_EXAMPLE = {
    "id": "weihai.food_production", "jurisdiction": "weihai", "in_force": "2021.09",
    "versions": [{"version": "2021.09", "sha256": "2f0c…", "effective": "2021-09-16",
                  "title": "威海市食品生产企业信用风险分级", "origin": "file", "in_force": True, "published_at": None},
                 {"version": "2025.01", "sha256": "870f…", "effective": "2025-07-01",
                  "title": "威海市食品生产企业信用风险分级", "origin": "published", "in_force": False,
                  "published_at": "2025-06-01T08:00:00.000000+00:00"}]}


class PolicySummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [POLICY_SUMMARY_EXAMPLE]})
    id: str
    jurisdiction: str
    in_force: Optional[str] = Field(description="the version in force today, if any")
    versions: list[VersionSummary]


class PolicyList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"policies": [POLICY_SUMMARY_EXAMPLE]}]})
    policies: list[PolicySummary]


class Diagnostic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [DIAGNOSTIC_EXAMPLE]})
    code: str
    severity: str
    message: str
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    help: str


class CheckReport(BaseModel):
    ok: bool = Field(description="no errors (warnings and assumptions do not count)")
    errors: int
    warnings: int
    assumptions: int
    diagnostics: list[Diagnostic]


class VersionDetail(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "weihai.food_production", "version": "2021.09", "sha256": "2f0c…", "effective": "2021-09-16",
        "title": "威海市食品生产企业信用风险分级", "origin": "file", "in_force": True, "published_at": None,
        "grades": ["A", "B", "C", "D"], "inputs": ["self_discipline", "inspection_issues"],
        "text": "policy weihai.food_production {\n  …\n}\n",
        "check": {"ok": True, "errors": 0, "warnings": 0, "assumptions": 3, "diagnostics": []}}]})
    id: str
    version: str
    sha256: str
    effective: str
    title: str
    origin: str
    in_force: bool
    published_at: Optional[str] = None
    grades: list[str]
    inputs: list[str]
    text: str
    check: CheckReport


class PolicyTextRequest(_Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "text": POLICY_TEXT_EXAMPLE, "file": "weihai/demo.rules"}]})
    text: str = Field(max_length=1_000_000, description="the policy text")
    file: Optional[str] = Field(None, max_length=200, description="a file name for the diagnostics")


class ValidationReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ok": False, "policy": None, "errors": 1, "warnings": 0, "assumptions": 0,
        "diagnostics": [DIAGNOSTIC_EXAMPLE]}]})
    ok: bool
    policy: Optional[dict[str, Any]] = Field(description="id, version, sha256, effective of a text that checks clean")
    errors: int
    warnings: int
    assumptions: int
    diagnostics: list[Diagnostic]


class ReloadReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reloaded": True, "policies": 2, "versions": 2, "loaded_at": "2026-11-22T03:00:00.000000+00:00",
        "diagnostics": []}]})
    reloaded: bool
    policies: int
    versions: int
    loaded_at: str
    diagnostics: list[Diagnostic]


# ---- audit -----------------------------------------------------------------------------------
class AuditEntry(BaseModel):
    id: int
    at: str
    actor_id: Optional[int]
    actor_name: str
    role: str
    action: str
    jurisdiction: str
    policy_id: Optional[str]
    policy_version: Optional[str]
    policy_sha256: Optional[str]
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "entries": [{"id": 1, "at": "2026-11-22T03:00:00.000000+00:00", "actor_id": 2,
                     "actor_name": "双随机平台", "role": "system", "action": "evaluate", "jurisdiction": "weihai",
                     "policy_id": "weihai.food_production", "policy_version": "2021.09", "policy_sha256": "2f0c…",
                     "detail": {"evaluation_id": "3f6c…", "enterprise_id": "91371000MA3C000001",
                                "input_sha256": "9b1d…", "result_sha256": "e3b0…"},
                     "prev_hash": "0" * 64, "hash": "5d41…"}],
        "next_after_id": 1}]})
    entries: list[AuditEntry]
    next_after_id: Optional[int] = Field(description="pass as `after_id` for the next page; null at the end")


class AuditVerdict(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ok": True, "rows": 1520, "head_hash": "5d41…"},
        {"ok": False, "rows": 41, "head_hash": "9a0b…",
         "first_bad_row": {"id": 42, "problem": "row 42 does not match its hash: it was edited"}}]})
    ok: bool
    rows: int
    head_hash: str
    first_bad_row: Optional[dict[str, Any]] = None


class StoredEvaluation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "evaluation_id": "3f6c2a9e0b8d4d27a1c5e7f9b2d4c6a8", "batch_id": None, "created_at": "2026-11-22T03:00:00+00:00",
        "caller_id": 2, "policy_id": "weihai.food_production", "policy_version": "2021.09",
        "policy_sha256": "2f0c…", "as_of": "2024-06-30", "enterprise_id": "91371000MA3C000001",
        "input_sha256": "9b1d…", "grade": "B", "score": "47.6", "result": RESULT_EXAMPLE,
        "record_id": "3f6c2a9e0b8d4d27a1c5e7f9b2d4c6a8"}]})
    evaluation_id: str
    batch_id: Optional[str]
    created_at: str
    caller_id: int
    policy_id: str
    policy_version: str
    policy_sha256: str
    as_of: str
    enterprise_id: Optional[str]
    input_sha256: str
    grade: Optional[str]
    score: Optional[str]
    result: Any = Field(description="the evaluation's result; for a chunk's record, the chunk's answers "
                                    "(docs/api.md, Batches)")
    record_id: str = Field(description="the stored record that holds it: the evaluation's own id, or for an answer a "
                                       "large batch released from a chunk, the chunk's record (`<batch>.<first>-<last>`)")


# ---- health ----------------------------------------------------------------------------------
class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ready": True, "database": "ok", "recorder": "ok", "policies": 2, "versions": 2,
        "loaded_at": "2026-11-22T03:00:00.000000+00:00"}]})
    ready: bool
    database: str
    recorder: str
    policies: int
    versions: int
    loaded_at: Optional[str]
