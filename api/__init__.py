"""The evaluation service: other systems ask it for grades over HTTP (docs/api.md).

    main.py        wires the routers, problem handlers and body limits (create_app)
    routes/        one router per resource: thin — validate, call the engine, shape the answer
    deps.py        what routes need, as Annotated dependencies (caller, policy set, bodies)
    routing.py     HotPaths: the evaluation endpoints answered before the router (no dependency solver)
    workers.py     `serve --workers N`: a listening socket per worker (SO_REUSEPORT), SIGHUP reloads
    service.py     what a worker holds: settings, store, key cache, policy set, recorder
    policyset.py   the policies in service, compiled once, swapped whole on reload / publish
    evaluations.py evaluating for a caller: the answer, its record, its audit event
    columnar.py    large batch chunks on the columnar plan, answers from per-policy JSON templates
    publishing.py  checking and publishing policy texts
    recorder.py    group commit of records and audit events before results are released
    audit.py       the hash-chained audit log and its verification
    keys.py        API keys, roles, jurisdictions
    store.py       the sqlmodel tables (schema by alembic/) and the database connections
    problems.py    errors as RFC 9457 problem details
    schemas.py     request/response shapes with the OpenAPI examples
"""
