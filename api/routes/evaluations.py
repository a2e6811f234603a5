"""Evaluations: one enterprise, a batch (JSON array or NDJSON stream), and reading a stored one."""
from __future__ import annotations

from typing import Annotated

import msgspec
import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from .. import arrow_batches as arrow, arrow_stream, evaluations as evals
from ..deps import (EVALUATION_OPENAPI, CanReadEvaluations, EvaluationContext, PolicyId, ServiceDep, in_scope,
                    json_body)
from .. import problems
from ..problems import Problem
from ..responses import JSON, NDJSONStream
from ..schemas import (EVALUATION_REQUEST_EXAMPLE, WEIHAI_INPUTS, BatchResult, Evaluation, EvaluationRequest,
                       StoredEvaluation)

router = APIRouter(tags=["evaluations"])
hot = APIRouter(tags=["evaluations"])     # the two evaluation endpoints, answered by routing.HotPaths

_ARRAY_OF_RAW = msgspec.json.Decoder(list[msgspec.Raw])
CHUNK = 2000              # records evaluated, recorded and released together in a batch (per record;
                          # through the columnar plan, api/columnar.CHUNK)
_ONE_BODY = {**EVALUATION_OPENAPI, "requestBody": {"required": True, "content": {"application/json": {
    "schema": EvaluationRequest.model_json_schema(), "example": EVALUATION_REQUEST_EXAMPLE}}}}
_BATCH_BODY = {**EVALUATION_OPENAPI, "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": EvaluationRequest.model_json_schema()},
                         "example": [EVALUATION_REQUEST_EXAMPLE,
                                     {"enterprise_id": "91371000MA3C000002",
                                      "inputs": dict(WEIHAI_INPUTS, penalties="two")}]},
    "application/x-ndjson": {"schema": {"type": "string"},
                             "example": orjson.dumps(EVALUATION_REQUEST_EXAMPLE).decode() + "\n"},
    arrow_stream.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary",
                                  "description": "an Arrow IPC stream: `enterprise_id` and a column per input "
                                                 "(docs/api.md, Arrow batches)"}}}}}


@hot.post("/policies/{policy_id}/evaluations", status_code=201, response_model=Evaluation,
             openapi_extra=_ONE_BODY, summary="evaluate one enterprise",
             description="Decided by the version in force today, the one in force on `as_of`, or a named `version` "
                         "(name or sha256). The evaluation is recorded and the read is audited before the answer "
                         "is sent; `Location` points at the stored record.",
             responses={403: problems.DOC, 404: problems.DOC, 415: problems.DOC, 422: problems.DOC})
async def evaluate(policy_id: PolicyId, call: EvaluationContext, request: Request):
    in_scope(call.caller, policy_id)
    body = await json_body(request)
    o = call.options
    done, event = evals.evaluate_one(call.policies, call.caller, policy_id, o.version, o.on, o.explain, body)
    await call.service.recorder.record([done.row], [event])
    return Response(done.response_bytes(), status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/evaluations/{done.row['id']}"})


@hot.post("/policies/{policy_id}/evaluations/batch", response_model=BatchResult, openapi_extra=_BATCH_BODY,
             summary="evaluate many enterprises: a JSON array, or NDJSON in and out",
             description="One answer per record, in order, each with its `index`; a bad record gets its own `error` "
                         "and the others are evaluated. With `Content-Type: application/x-ndjson` the records are "
                         "read and the answers written one line each as they go, so a batch of any size streams; "
                         "the batch id is in the `Batch-Id` header. With `Content-Type: "
                         f"{arrow_stream.MEDIA_TYPE}` the records are the rows of an Arrow IPC stream, a column per "
                         "input, and the answers come back as one, a column per field (docs/api.md).",
             responses={200: {"content": {"application/x-ndjson": {"example": '{"index":0,"evaluation_id":"…",'
                                                                               '"result":{"grade":"B"}}\n'},
                                          arrow_stream.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                        403: problems.DOC, 404: problems.DOC, 413: problems.DOC, 415: problems.DOC})
async def evaluate_batch(policy_id: PolicyId, call: EvaluationContext, request: Request):
    caller, policies, service = call.caller, call.policies, call.service
    in_scope(caller, policy_id)
    version, as_of, explain = call.options.version, call.options.on, call.options.explain
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    limit = service.settings.max_batch_records
    if media == "application/x-ndjson":
        batch = evals.Batch(policies, caller, policy_id, version, as_of, explain)
        return NDJSONStream(_ndjson(request, service, batch, limit), headers={"Batch-Id": batch.id})
    if media == arrow_stream.MEDIA_TYPE:
        return await _arrow(request, service, evals.Batch(policies, caller, policy_id, version, as_of, explain), limit)
    if media != "application/json":
        raise Problem("unsupported-media-type", "send a JSON array (application/json), NDJSON "
                      f"(application/x-ndjson) or an Arrow IPC stream ({arrow_stream.MEDIA_TYPE})")
    body = await request.body()
    try:        # the array's elements as JSON bytes, each parsed when evaluated (api/columnar.py)
        items = [bytes(raw) for raw in _ARRAY_OF_RAW.decode(body)]
    except (msgspec.ValidationError, msgspec.DecodeError):
        items = None
    if items is None:
        try:    # not an array of JSON values: say what is wrong as the JSON parser sees it
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Problem("malformed-request", f"the body is not valid JSON: {exc}")
    if type(items) is not list:
        raise Problem("invalid-request", "send a JSON array of {\"enterprise_id\": …, \"inputs\": {…}}",
                      errors=[{"loc": [], "type": "wrong_type", "msg": "expected an array"}])
    if len(items) > limit:
        raise Problem("too-large", f"{len(items)} records is more than the {limit} a batch may hold; "
                      "split it, or stream it as NDJSON")
    batch = evals.Batch(policies, caller, policy_id, version, as_of, explain)
    answers = []
    size = batch.chunk_size(CHUNK)
    for start in range(0, len(items), size):
        chunk = [(i, obj, None) for i, obj in enumerate(items[start:start + size], start)]
        out, rows, event = await run_in_threadpool(batch.run_chunk, chunk)
        await service.recorder.record_large(rows, [event])
        answers += out
    head = orjson.dumps({"batch_id": batch.id, "summary": batch.summary()})
    return Response(head[:-1] + b',"results":[' + b",".join(answers) + b"]}", media_type="application/json")


async def _arrow(request: Request, service, batch: evals.Batch, limit: int) -> Response:
    """An Arrow IPC stream in, one out (api/arrow_batches.py); recorded chunk by chunk."""
    if batch.explain:
        raise Problem("invalid-request", "explanations come with JSON batches: send the records as JSON "
                      "(or NDJSON) to have each grade explained")
    body = await request.body()
    frame = await run_in_threadpool(arrow_stream.read_stream, body, limit)
    run = arrow.ArrowBatch(batch, frame.schema, await run_in_threadpool(arrow.body_sha256, body))
    answers = []
    size = batch.chunk_size(CHUNK)          # (per record, as in JSON, when the plan does not take the policy)
    for start in range(0, frame.height, size):
        out, rows, event = await run_in_threadpool(run.run_chunk, frame.slice(start, size), start)
        await service.recorder.record_large(rows, [event])
        answers.append(out)
    s = batch.summary()
    return Response(await run_in_threadpool(arrow.write_stream, answers, run.out_schema), media_type=arrow_stream.MEDIA_TYPE,
                    headers={"Batch-Id": batch.id, "Input-Sha256": run.body_sha256,
                             "Batch-Records": str(s["records"]), "Batch-Evaluated": str(s["evaluated"]),
                             "Batch-Refused": str(s["refused"])})


async def _ndjson(request: Request, service, batch: evals.Batch, limit: int):
    """Read lines, evaluate them CHUNK at a time, record, then write their answers."""
    pending, index, buffer = [], 0, b""
    size = batch.chunk_size(CHUNK)

    async def flush():
        nonlocal pending
        chunk, pending = pending, []
        out, rows, event = await run_in_threadpool(batch.run_chunk, chunk)
        await service.recorder.record_large(rows, [event])
        return b"".join(a + b"\n" for a in out)

    try:
        async for data in request.stream():
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                if index >= limit:
                    raise Problem("too-large", f"a batch holds at most {limit} records; the rest were not read")
                pending.append((index, line, None))     # parsed when evaluated (api/columnar.py)
                index += 1
                if len(pending) >= size:
                    yield await flush()
        if buffer.strip():
            if index >= limit:
                raise Problem("too-large", f"a batch holds at most {limit} records; the rest were not read")
            pending.append((index, buffer, None))
        if pending:
            yield await flush()
    except Problem as p:
        problem = p
        if pending:                         # the records read before the limit still get answers
            try:
                yield await flush()
            except Problem as q:
                problem = q
        yield orjson.dumps({"index": None, "error": problem.body(request.url.path)}) + b"\n"


@router.get("/evaluations/{evaluation_id}", response_model=StoredEvaluation,
            summary="a stored evaluation (the read is audited)", responses={403: problems.DOC, 404: problems.DOC})
async def get_evaluation(evaluation_id: Annotated[str, Path(max_length=64)], caller: CanReadEvaluations,
                         service: ServiceDep):
    row = await run_in_threadpool(service.store.evaluation, evaluation_id)
    if row is None:
        row = await run_in_threadpool(evals.answer_in_chunk, service.store, evaluation_id)
    if row is None:
        raise Problem("not-found", f"there is no evaluation `{evaluation_id}`")
    in_scope(caller, row["policy_id"])
    await service.recorder.record([], [evals.read_event(caller, row)])
    return JSON(evals.stored_evaluation(row))
