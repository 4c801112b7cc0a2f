"""HTTP side of CSV import and export: /users|orders/import and /users|orders/export.csv."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from admin import audit, csv_export_gate, db, metrics, replica
from admin.access import client_ip, csrf_matches, current_staff
from admin.bodies import BodyLimits
from admin.csv_export import ExportOutcome, export_query, start_export
from admin.csv_import import ImportResult, check_header, header_names, import_csv
from admin.csv_options import ImportOptions
from admin.csv_problems import ImportRejected, Problem
from admin.csv_spool import spool
from admin.csv_tables import ORDERS, USERS, CsvTable
from admin.csv_upload import HeaderError, Upload, UploadRefused, open_upload, split_header
from admin.htmx import render
from admin.resources.query import InvalidQuery, ListQuery
from admin.resources.registry import registry
from admin.settings import Settings

PAGE = "csv/import.html"
RESULT = "csv/_import_result.html"
OPTIONS_HELP = (
    "Nothing is rounded or guessed: send round_decimals=1 to round amounts to the column's "
    "decimals, and date_order=dmy or date_order=mdy to read dates like 01/02/2024 "
    "(ISO dates such as 2024-02-01 are always accepted)."
)


def _context(request: Request, spec: CsvTable, **extra: Any) -> dict[str, Any]:
    settings = request.app.state.settings
    options: ImportOptions = extra.pop("options", None) or ImportOptions()
    return {
        "spec": spec,
        "max_upload_mb": settings.max_upload_mb,
        "mode": options.mode.value,
        "options": options,
        **extra,
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request: Request, spec: CsvTable, status: int, **ctx: Any) -> Response:
    """The result as JSON for scripts that ask for it, else the result fragment or page."""
    if _wants_json(request):
        result: ImportResult | None = ctx.get("result")
        problems: list[Problem] = ctx.get("problems", [])
        body: dict[str, Any] = {"outcome": "imported" if result else "rejected"}
        if result:
            body.update(rows=result.rows, inserted=result.inserted, updated=result.updated,
                        unchanged=result.unchanged, seconds=round(result.seconds, 3))  # fmt: skip
        else:
            body["errors"] = [asdict(p) for p in problems]
            body["more_errors"] = ctx.get("more", False)
            body["options"] = OPTIONS_HELP
        return JSONResponse(body, status_code=status)
    return render(request, PAGE, RESULT, _context(request, spec, **ctx), status_code=status)


async def _audit_import(
    conn: asyncpg.Connection,
    request: Request,
    spec: CsvTable,
    upload: Upload | None,
    options: ImportOptions | None,
    outcome: str,
    **details: Any,
) -> None:
    metrics.CSV_TRANSFERS.labels("import", spec.table, outcome).inc()
    if upload is not None:
        metrics.CSV_BYTES.labels("import", spec.table).inc(upload.size)
    if outcome == "imported":
        metrics.CSV_ROWS.labels("import", spec.table).inc(details.get("rows") or 0)
    await audit.record(
        conn,
        staff=current_staff(request),
        action="csv_import",
        resource=spec.table,
        after={
            "file": upload.filename if upload else None,
            "size": upload.size if upload else None,
            "sha256": upload.sha256 if upload else None,
            "mode": options.mode.value if options else None,
            **({"options": options.describe()} if options else {}),
            "outcome": outcome,
            **details,
        },
        ip=client_ip(request),
    )


async def _audit_failure(request: Request, spec: CsvTable, *args: Any, **details: Any) -> None:
    """The failed import's audit entry, in its own short transaction after the rollback."""
    async with db.connection(request) as conn, conn.transaction():
        await _audit_import(conn, request, spec, *args, **details)


async def _drain(upload: Upload) -> None:
    """Read the rest of a rejected upload so the client gets its answer (and the hash is whole)."""
    with contextlib.suppress(UploadRefused, ClientDisconnect):
        async for _ in upload.chunks():
            pass


def _body_limits(settings: Settings) -> BodyLimits:
    return BodyLimits(
        max_bytes=settings.max_upload_bytes,
        total_s=settings.import_timeout_s,
        idle_s=settings.body_timeout_s,
        min_bytes_per_s=settings.body_min_bytes_per_s,
    )


def _timed_out_message(settings: Settings) -> str:
    return (
        f"The import did not finish within {settings.import_timeout_s:g} s and was cancelled; "
        "nothing was imported."
    )


async def _import(request: Request, spec: CsvTable) -> Response:
    settings: Settings = request.app.state.settings
    content_type = request.headers.get("content-type", "")
    if request.state.csrf_pending and not content_type.startswith("multipart/form-data"):
        # only a form can carry the token in its body; anything else needs the header
        raise HTTPException(403, "Send the X-CSRF-Token header with a raw CSV body.")
    deadline = asyncio.get_running_loop().time() + settings.import_timeout_s
    try:
        async with asyncio.timeout_at(deadline):
            upload = await open_upload(request, _body_limits(settings))
    except UploadRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except TimeoutError:
        raise HTTPException(408, _timed_out_message(settings)) from None
    # a streamed form is not parsed by the guard: the token must precede the file
    if request.state.csrf_pending and not csrf_matches(request, upload.fields.get("csrf_token")):
        raise HTTPException(
            403, "The form has expired or its security token is missing. Reload and retry."
        )
    try:
        options = ImportOptions.parse(
            lambda name: upload.fields.get(name) or request.query_params.get(name)
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        async with asyncio.timeout_at(deadline):
            result = await _receive_and_import(request, spec, upload, options, deadline)
    except (HeaderError, ImportRejected) as exc:
        await _drain(upload)
        if isinstance(exc, HeaderError):
            problems, more = [Problem(str(exc), line=1)], False
        else:
            problems, more = exc.problems, exc.more
        await _audit_failure(request, spec, upload, options, "rejected", errors=len(problems))
        return _answer(request, spec, 422, problems=problems, more=more, options=options)
    except UploadRefused as exc:
        await _audit_failure(request, spec, upload, options, "refused", reason=str(exc))
        raise HTTPException(exc.status, str(exc)) from None
    except (TimeoutError, asyncpg.QueryCanceledError):
        message = _timed_out_message(settings)
        await _audit_failure(request, spec, upload, options, "refused", reason=message)
        raise HTTPException(408, message) from None
    except ClientDisconnect:
        reason = "client disconnected"
        await _audit_failure(request, spec, upload, options, "aborted", reason=reason)
        return Response(status_code=400)
    return _answer(request, spec, 200, result=result, options=options)


async def _receive_and_import(
    request: Request, spec: CsvTable, upload: Upload, options: ImportOptions, deadline: float
) -> ImportResult:
    """Receive the whole file to disk first, then take a connection and run the transaction.

    Nothing in the database is held while the client sends (see csv_spool).
    """
    header, rest = await split_header(upload.chunks(), header_names)
    check_header(spec, header, options.mode)
    with await spool(header.raw, rest) as file:

        async def on_success(result: ImportResult) -> None:
            await _audit_import(
                conn, request, spec, upload, options, "imported",
                rows=result.rows, inserted=result.inserted, updated=result.updated,
            )  # fmt: skip

        seconds_left = deadline - asyncio.get_running_loop().time()
        async with db.connection(request) as conn:
            return await import_csv(
                conn, spec, header, options, file, on_success, seconds_left=seconds_left
            )


async def _import_page(request: Request, spec: CsvTable) -> Response:
    return render(request, PAGE, PAGE, _context(request, spec))


async def users_import_page(request: Request) -> Response:
    return await _import_page(request, USERS)


async def orders_import_page(request: Request) -> Response:
    return await _import_page(request, ORDERS)


async def users_import(request: Request) -> Response:
    return await _import(request, USERS)


async def orders_import(request: Request) -> Response:
    return await _import(request, ORDERS)


def _filename(table: str) -> str:
    return f"{table}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.csv"


async def _export(request: Request, spec: CsvTable, query: ListQuery) -> Response:
    headers = {
        "Content-Disposition": f'attachment; filename="{_filename(spec.table)}"',
        "Cache-Control": "no-store",
    }
    if request.method == "HEAD":
        # what a download would be, without running it (nor auditing it)
        return Response(media_type="text/csv; charset=utf-8", headers=headers)
    if request.method == "GET" and not csv_export_gate.proves_same_origin(request):
        return csv_export_gate.confirm_page(request, spec)
    where, order_by, args = query.filter_sql()
    raw = request.query_params.get("raw", "") in {"1", "true", "yes"}
    sql = export_query(spec, where, order_by, raw=raw)
    # the filters as the export applied them, not whatever else the URL carried
    filters = query.params()
    staff = current_staff(request)
    ip = client_ip(request)

    async def on_finish(conn: asyncpg.Connection, outcome: ExportOutcome) -> None:
        result = "completed" if outcome.completed else "aborted"
        metrics.CSV_TRANSFERS.labels("export", spec.table, result).inc()
        metrics.CSV_ROWS.labels("export", spec.table).inc(outcome.rows or 0)
        metrics.CSV_BYTES.labels("export", spec.table).inc(outcome.bytes)
        await audit.record(
            conn,
            staff=staff,
            action="csv_export",
            resource=spec.table,
            after={
                "filters": filters,
                "raw": raw,
                "rows": outcome.rows,
                "outcome": "completed" if outcome.completed else "aborted",
            },
            ip=ip,
        )

    settings = request.app.state.settings
    return await start_export(
        replica.read_pool(request),
        settings.pool_acquire_timeout,
        sql,
        args,
        on_finish,
        request.app.state.exports,
        headers,
        audit_pool=request.app.state.pool,
    )


async def _list_query(request: Request, name: str) -> ListQuery:
    """The export's filters, parsed as the table's list parses them."""
    async with db.connection(request) as conn:
        table = (await registry(request).current(conn)).get(name)
    if table is None:
        raise HTTPException(404, f"There is no table {name!r}.")
    try:
        return ListQuery.from_params(table, request.query_params)
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None


async def users_export(request: Request) -> Response:
    return await _export(request, USERS, await _list_query(request, "users"))


async def orders_export(request: Request) -> Response:
    return await _export(request, ORDERS, await _list_query(request, "orders"))
