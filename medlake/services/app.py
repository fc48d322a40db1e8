"""The HTTP service: ``create_app(settings)`` builds the FastAPI application ``medlake serve`` runs.

Only ``GET /health``, ``GET /openapi.json`` (and the docs page) and ``POST /token`` answer without a bearer token.
Every other endpoint checks the token (401), the caller's rate (429) and the role → service policy (403), masks
what it returns by grade, and every request, answered or refused, leaves one audit record before its response is
sent (503 when that record cannot be written). Errors are ``application/problem+json``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.services.audit import AuditLog, AuditRecord
from medlake.services.configured import QueryService, load_services
from medlake.services.patient import PatientIndex, json_value
from medlake.services.policy import AccessPolicy, configured_service_resource
from medlake.services.problems import PROBLEM_TYPE, AuditUnavailableError, ServiceError, problem_body, problem_responses
from medlake.services.protection import Protection
from medlake.services.ratelimit import RateLimiter
from medlake.services.tokens import Principal, TokenAuthority
from medlake.services.users import UserStore

__all__ = ["ServiceState", "create_app"]

_OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/token"})
_MASTER_ID = r"^[A-Za-z0-9_-]{1,64}$"
_ERRORS = (400, 401, 403, 404, 413, 422, 429, 503)
_OUTCOMES = {401: "unauthenticated", 403: "denied", 404: "not_found", 413: "rejected", 422: "invalid",
             429: "rate_limited", 503: "unavailable"}


# -- request context --------------------------------------------------------------------------------------------

@dataclass
class _Audit:
    """What an endpoint tells the audit about its request."""

    principal: Principal | None = None
    service: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    unmasked: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)


def _audit_of(request: Request) -> _Audit:
    found = getattr(request.state, "audit", None)
    if found is None:
        found = request.state.audit = _Audit()
    return found


@dataclass
class ServiceState:
    """What one server process holds: settings, engine, stores and the long-lived table handles."""

    settings: Settings
    engine: Engine
    users: UserStore
    tokens: TokenAuthority
    policy: AccessPolicy
    limiter: RateLimiter
    audit: AuditLog
    protection: Protection
    patients: PatientIndex
    services: dict[str, QueryService]


# -- response models --------------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class Health(BaseModel):
    status: str
    audit_pending: int


class Page(BaseModel):
    total: int | None = Field(description="all matching rows (None when not counted)")
    limit: int
    offset: int
    next_offset: int | None


class PatientResponse(BaseModel):
    master_id: str
    golden_record: dict[str, Any]
    identities: list[dict[str, Any]]
    events: list[dict[str, Any]]
    page: Page
    columns_unmasked: list[str]


class Rows(BaseModel):
    service: str
    rows: list[dict[str, Any]]
    page: Page
    columns_unmasked: list[str]


class MetricInfo(BaseModel):
    name: str
    label: str
    description: str
    dimensions: list[str]
    measures: list[str]


class MetricQuery(_Strict):
    filters: dict[Annotated[str, Field(max_length=64)], list[Annotated[str, Field(max_length=128)]]] = Field(
        default_factory=dict, max_length=16, description="dimension -> accepted values (as text)")
    limit: int = Field(default=100, ge=1, le=5000)
    offset: int = Field(default=0, ge=0, le=100_000)


class CatalogTable(BaseModel):
    name: str
    layer: str
    scenario: str
    description: str
    owner: str
    category: str
    grade: int | None
    rows: int | None
    columns: list[str]
    version: int
    freshness: str | None


class ColumnInfo(BaseModel):
    column: str
    category: str | None
    grade: int | None
    pii_type: str | None
    source: str | None


class LineageHop(BaseModel):
    node: str
    kind: str
    label: str
    hops: int


# -- middleware ---------------------------------------------------------------------------------------------------

class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes (413), by Content-Length or by counting what arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_problem(scope, send, 413, "Request body too large", f"at most {self.limit} bytes")
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_problem(scope, send, 413, "Request body too large", f"at most {self.limit} bytes")


async def _send_problem(scope: Scope, send: Send, status: int, title: str, detail: str) -> None:
    response = _problem(status, title, detail, scope.get("path", ""))
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _problem(status: int, title: str, detail: str = "", instance: str = "", headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, title, detail, instance, **extra), status_code=status,
                        media_type=PROBLEM_TYPE, headers=headers)


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return _OUTCOMES.get(status, "error" if status >= 500 else "rejected")


def _audited(state_of: Callable[[], ServiceState]) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                                             Awaitable[Response]]:
    async def audit_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        context = _audit_of(request)
        try:
            response = await call_next(request)
        except Exception as exc:  # an unexpected failure: answered as 500 problem, still audited
            response = _problem(500, "Internal error", type(exc).__name__, request.url.path)
        principal = context.principal
        record = AuditRecord(
            request_id=request_id, time=datetime.now(UTC), method=request.method, path=request.url.path,
            user=principal.name if principal else "", role=principal.role if principal else "",
            issuer=principal.issuer if principal else "", client=request.client.host if request.client else "",
            service=context.service, parameters=context.parameters, status=response.status_code,
            outcome=_outcome(response.status_code), rows=context.rows, columns_unmasked=context.unmasked,
            grant_id=",".join(context.grants), latency_ms=round((time.perf_counter() - started) * 1000, 3))
        try:
            await run_in_threadpool(state_of().audit.record, record)
        except AuditUnavailableError as exc:
            return _problem(exc.status, exc.title, exc.detail, request.url.path)
        response.headers["X-Request-ID"] = request_id
        return response

    return audit_request


# -- dependencies ---------------------------------------------------------------------------------------------------

_bearer = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _query_names(dependant: Any) -> set[str]:
    """The query parameter names a route and its dependencies declare."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query_only(request: Request) -> None:
    """Unknown query parameters are refused (422), like unknown body fields."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ServiceError(422, "Invalid parameters", f"unknown query parameter(s): {', '.join(unknown)}")


def _caller(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    if not token:
        raise ServiceError(401, "Not authenticated", "a bearer token is required",
                           headers={"WWW-Authenticate": "Bearer"})
    state = _state(request)
    principal = state.tokens.verify(token)
    _audit_of(request).principal = principal
    wait = state.limiter.acquire(f"user:{principal.name}")
    if wait:
        raise ServiceError(429, "Too many requests", f"rate limit of {state.settings.serve.rate_per_minute} "
                           "requests per minute reached", headers={"Retry-After": str(int(wait) + 1)})
    return principal


def _authorized(resource: str) -> Callable[[Request, Principal], Principal]:
    def check(request: Request, principal: Annotated[Principal, Depends(_caller)]) -> Principal:
        _audit_of(request).service = resource
        if not _state(request).policy.permits(principal.role, resource):
            raise ServiceError(403, "Forbidden", f"role {principal.role} may not use {resource}")
        return principal

    return check


def _page(total: int | None, limit: int, offset: int, *, more: bool = False) -> Page:
    """One page's position; ``more`` says there are rows after it when the total is not counted."""
    after = more if total is None else offset + limit < total
    return Page(total=total, limit=limit, offset=offset, next_offset=offset + limit if after else None)


# -- the application ---------------------------------------------------------------------------------------------

def create_app(settings: Settings, *, engine: Engine | None = None, state: ServiceState | None = None) -> FastAPI:
    """The service for ``settings`` on ``engine`` (default: the engine ``settings.engine`` names)."""
    if state is None:
        state = _build_state(settings, engine)
    current = state

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        current.audit.start()
        try:
            yield
        finally:
            current.audit.close()

    app = FastAPI(title="medlake data services", version="1", lifespan=lifespan, redoc_url=None,
                  responses=problem_responses(*_ERRORS), dependencies=[Depends(_known_query_only)],
                  description=__doc__)
    app.state.service = state
    app.add_middleware(BodyLimit, limit=settings.serve.max_body_bytes)
    app.middleware("http")(_audited(lambda: current))  # added last: outermost, so it audits a 413 too
    _exception_handlers(app)
    _open_routes(app)
    _patient_routes(app)
    _metric_routes(app)
    _catalog_routes(app)
    for service in state.services.values():
        state.policy.allow(service.spec.roles, configured_service_resource(service.name))
        _configured_route(app, service)
    return app


def _build_state(settings: Settings, engine: Engine | None) -> ServiceState:
    if engine is None:
        from medlake.resources import LakeResource

        engine = LakeResource.from_settings(settings).engine
    protection = Protection(engine, settings)
    return ServiceState(settings=settings, engine=engine, users=UserStore(settings), tokens=TokenAuthority(settings),
                        policy=AccessPolicy(settings), limiter=RateLimiter(settings.serve.rate_per_minute),
                        audit=AuditLog(engine, settings), protection=protection,
                        patients=PatientIndex(engine, settings, protection), services=load_services(settings))


def _exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _problem(exc.status, exc.title, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"location": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
                  for e in exc.errors()][:20]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        return _problem(422, "Invalid parameters", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), "", request.url.path, dict(exc.headers or {}))


def _open_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["service"])
    def health(request: Request) -> Health:
        """Liveness: answers without a token."""
        _audit_of(request).service = "health"
        return Health(status="ok", audit_pending=_state(request).audit.pending)

    @app.post("/token", tags=["service"])
    def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenResponse:
        """OAuth2 password flow: a bearer token for a user of the built-in store."""
        state = _state(request)
        context = _audit_of(request)
        context.service, context.parameters = "token", {"username": form.username}
        client = request.client.host if request.client else ""
        if state.limiter.acquire(f"login:{form.username}@{client}"):
            raise ServiceError(429, "Too many requests", "too many sign-in attempts", headers={"Retry-After": "60"})
        user = state.users.authenticate(form.username, form.password)
        if user is None:
            raise ServiceError(401, "Not authenticated", "unknown user or wrong password",
                               headers={"WWW-Authenticate": "Bearer"})
        issued, lifetime = state.tokens.issue(user)
        context.principal = Principal(user.name, user.role, "medlake")
        return TokenResponse(access_token=issued, expires_in=lifetime, role=user.role)


def _patient_routes(app: FastAPI) -> None:
    @app.get("/patients/{master_id}", tags=["patient 360"])
    def patient_360(
        request: Request,
        principal: Annotated[Principal, Depends(_authorized("patient360"))],
        master_id: Annotated[str, Path(pattern=_MASTER_ID, description="EMPI master patient ID")],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> PatientResponse:
        """Golden record, source identities and events (encounters, diagnoses, medications, lab results,
        settlements) across institutions, oldest first, one page of events at a time."""
        context = _audit_of(request)
        context.parameters = {"master_id": master_id, "limit": limit, "offset": offset}
        view = _state(request).patients.view(master_id, principal, limit=limit, offset=offset)
        context.rows, context.unmasked, context.grants = view.rows, view.unmasked, view.grants_used
        return PatientResponse(master_id=view.master_id, golden_record=view.golden_record,
                               identities=view.identities, events=view.events,
                               page=_page(view.total_events, limit, offset), columns_unmasked=view.unmasked)


def _metric_routes(app: FastAPI) -> None:
    from medlake.metrics import METRICS

    by_name = {m.name: m for m in METRICS}

    @app.get("/metrics", tags=["metrics"])
    def list_metrics(request: Request, _: Annotated[Principal, Depends(_authorized("metrics"))]) -> list[MetricInfo]:
        """The indicators, with the dimensions they can be filtered by."""
        return [MetricInfo(name=m.name, label=m.label, description=m.description, dimensions=list(m.grain),
                           measures=list(m.measures)) for m in METRICS]

    @app.post("/metrics/{name}/query", tags=["metrics"])
    def query_metric(
        request: Request,
        principal: Annotated[Principal, Depends(_authorized("metrics"))],
        name: Annotated[str, Path(max_length=64)],
        query: MetricQuery,
    ) -> Rows:
        """Rows of one indicator table, filtered by dimension values."""
        import narwhals as nw

        context = _audit_of(request)
        context.parameters = {"metric": name, **query.model_dump()}
        spec = by_name.get(name)
        if spec is None:
            raise ServiceError(404, "Not found", f"no metric {name!r}; known: {', '.join(sorted(by_name))}")
        unknown = sorted(set(query.filters) - set(spec.grain))
        if unknown:
            raise ServiceError(422, "Invalid parameters", f"{name} has no dimension(s) {', '.join(unknown)}; "
                               f"dimensions: {', '.join(spec.grain)}")
        state = _state(request)
        path = str(state.settings.table_path("metric", name))
        if not state.engine.exists(path):
            raise ServiceError(503, "Lake table missing", f"metric.{name} has not been computed yet")
        frame = state.engine.read(path)
        for dimension, values in query.filters.items():
            frame = frame.filter(nw.col(dimension).cast(nw.String()).is_in(values))
        total = int(state.engine.to_arrow(frame.select(nw.len())).column(0)[0].as_py())
        rows = state.engine.to_arrow(frame.sort(list(spec.grain)).head(query.offset + query.limit)).slice(
            query.offset, query.limit)
        return _masked_rows(request, principal, f"metric.{name}", rows, total, query.limit, query.offset)


def _masked_rows(request: Request, principal: Principal, table: str, rows: Any, total: int | None, limit: int,
                 offset: int, *, use_grants: bool = True, more: bool = False) -> Rows:
    import polars as pl

    masked = _state(request).protection.mask(pl.from_arrow(rows), table, principal, use_grants=use_grants)
    records = [{k: json_value(v) for k, v in r.items()} for r in masked.frame.to_dicts()]
    context = _audit_of(request)
    context.rows = len(records)
    context.unmasked = [f"{table}.{c}" for c in masked.unmasked]
    context.grants = list(masked.grants_used)
    return Rows(service=context.service, rows=records, page=_page(total, limit, offset, more=more),
                columns_unmasked=context.unmasked)


def _catalog_routes(app: FastAPI) -> None:
    @app.get("/catalog", tags=["catalog"])
    def search_catalog(
        request: Request,
        _: Annotated[Principal, Depends(_authorized("catalog"))],
        q: Annotated[str, Query(max_length=100, description="text in a table's name, description or columns")] = "",
    ) -> list[CatalogTable]:
        """Lake tables (name, layer, owner, GB/T 39725 category and grade, rows, freshness)."""
        from medlake.lineage.catalog import catalog, search

        _audit_of(request).parameters = {"q": q}
        entries = catalog(_state(request).settings)
        found = search(entries, q) if q else entries
        _audit_of(request).rows = len(found)
        return [CatalogTable(**{k: v for k, v in e.to_dict().items() if k in CatalogTable.model_fields})
                for e in found]

    @app.get("/catalog/{table}/columns", tags=["catalog"])
    def table_columns(
        request: Request,
        _: Annotated[Principal, Depends(_authorized("catalog"))],
        table: Annotated[str, Path(pattern=r"^[a-z_]+\.[a-z0-9_]+$", description="layer.name, e.g. dwd.patient")],
    ) -> list[ColumnInfo]:
        """A table's columns with their classification and grade."""
        from medlake.lineage.catalog import catalog

        _audit_of(request).parameters = {"table": table}
        entry = next((e for e in catalog(_state(request).settings) if e.name == table), None)
        if entry is None:
            raise ServiceError(404, "Not found", f"no lake table {table}")
        classes = _state(request).protection.classes(table)
        found = [ColumnInfo(column=c, category=str(classes[c].category) if c in classes else None,
                            grade=classes[c].grade if c in classes else None,
                            pii_type=str(classes[c].pii_type) if c in classes and classes[c].pii_type else None,
                            source=str(classes[c].source) if c in classes else None) for c in entry.columns]
        _audit_of(request).rows = len(found)
        return found

    @app.get("/lineage/{direction}", tags=["lineage"])
    def lineage(
        request: Request,
        _: Annotated[Principal, Depends(_authorized("lineage"))],
        direction: Annotated[str, Path(pattern="^(upstream|downstream)$")],
        ref: Annotated[str, Query(min_length=1, max_length=300, description="dataset, column, job or standard")],
        max_hops: Annotated[int | None, Query(ge=1, le=50)] = None,
    ) -> list[LineageHop]:
        """Everything upstream or downstream of a node of the lineage graph (``medlake lineage build``)."""
        graph = _lineage_graph(request)
        _audit_of(request).parameters = {"direction": direction, "ref": ref, "max_hops": max_hops}
        from medlake.lineage.errors import LineageError

        try:
            hops = graph.upstream(ref, max_hops) if direction == "upstream" else graph.downstream(ref, max_hops)
        except LineageError as exc:
            raise ServiceError(404, "Not found", str(exc)) from None
        _audit_of(request).rows = len(hops)
        return [LineageHop(node=n, kind=graph.kind(n), label=graph.label(n), hops=d)
                for n, d in sorted(hops.items(), key=lambda kv: (kv[1], kv[0]))]

    @app.get("/impact", tags=["lineage"])
    def standard_impact(
        request: Request,
        _: Annotated[Principal, Depends(_authorized("lineage"))],
        element: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Query(max_length=20)] = None,
        domain: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Query(max_length=20)] = None,
    ) -> dict[str, Any]:
        """Every column, table, model, check and metric a change of these standard elements or domains affects."""
        from medlake.lineage.impact import StandardChange, impact

        changes = [StandardChange("data_element", e) for e in element or []]
        changes += [StandardChange("value_domain", d) for d in domain or []]
        _audit_of(request).parameters = {"element": element or [], "domain": domain or []}
        if not changes:
            raise ServiceError(422, "Invalid parameters", "name at least one element or domain")
        report = impact(changes, _lineage_graph(request)).to_dict()
        _audit_of(request).rows = len(report.get("items", []))
        return report


def _lineage_graph(request: Request) -> Any:
    from medlake.lineage.graph import LineageGraph, graph_path

    path = graph_path(_state(request).settings)
    if not path.exists():
        raise ServiceError(503, "Lineage graph missing", "build it with `medlake lineage build`")
    return LineageGraph.load(path)


def _configured_route(app: FastAPI, service: QueryService) -> None:
    resource = configured_service_resource(service.name)
    model = service.request_model

    def run(request: Request, principal: Principal, body: BaseModel) -> Rows:
        context = _audit_of(request)
        context.parameters = body.model_dump(mode="json", exclude_none=True)
        state = _state(request)
        rows, more = service.run(state.engine, state.settings, body)
        limit, offset = body.limit, body.offset  # type: ignore[attr-defined]
        return _masked_rows(request, principal, service.spec.table, rows, None, limit, offset,
                            use_grants=service.spec.masking == "grade", more=more)

    # the annotations FastAPI reads: this service's own request model and policy check
    run.__annotations__.update(request=Request, principal=Annotated[Principal, Depends(_authorized(resource))],
                               body=model, **{"return": Rows})
    app.post(f"/services/{service.name}", tags=["configured services"], name=service.name,
             summary=service.spec.description or service.name, description=(
                 f"Reads {service.spec.table}; roles: {', '.join(service.spec.roles)}; at most "
                 f"{service.spec.row_limit} rows per call; masking: {service.spec.masking}."))(run)
