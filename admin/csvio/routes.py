"""HTTP side of CSV import and export, for every table: /<table>/import and
/<table>/export.csv, each behind the table's import / export permission."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from admin import audit, db, replica
from admin.access import CsrfFrom, client_ip, csrf_matches, current_staff
from admin.csvio import error_files, export_gate
from admin.csvio import progress as phases
from admin.csvio.dialect import UTF8_BOM, CrlfRows, ExportDialect, dialect_of
from admin.csvio.direct import can_follow, plan
from admin.csvio.export_split import SplitPlan, narrowed
from admin.csvio.exporting import ExportOutcome, export_query, start_export
from admin.csvio.formats import SAMPLE_BYTES, FileFormat, resolve
from admin.csvio.importing import DryRun, ImportResult, import_csv
from admin.csvio.incoming import Incoming, UploadStalled
from admin.csvio.mapping import ColumnMapping, map_header
from admin.csvio.options import ImportOptions, charset_encoding, chosen_mapping
from admin.csvio.preview import preview_page
from admin.csvio.problems import ImportRejected, Problem
from admin.csvio.screens import Screen
from admin.csvio.tables import CsvTable, csv_table
from admin.csvio.upload import (
    CsvHeader,
    HeaderError,
    Upload,
    UploadRefused,
    open_upload,
    split_header,
)
from admin.ops import metrics
from admin.resources.model import Table
from admin.resources.query import InvalidQuery, ListQuery
from admin.resources.routes import page, resource_route
from admin.resources.spec import Action
from admin.resources.tables import Kind
from admin.settings import Settings
from admin.web.bodies import BodyLimits
from admin.web.htmx import render

log = logging.getLogger("admin.csv")

CANCEL_POLL_SECONDS = 0.25
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


def summary(ctx: dict[str, Any]) -> str:
    """The outcome in plain words ("Nothing imported: 6 problems")."""
    if ctx.get("cancelled"):
        return str(ctx["cancelled"])
    result: ImportResult | None = ctx.get("result")
    if result is not None:
        rows = f"{result.rows:,} row{'s' if result.rows != 1 else ''}"
        blank = result.blank_lines
        skipped = f" {blank:,} blank line{'s' if blank != 1 else ''} skipped." if blank else ""
        if ctx.get("dry_run"):
            return (
                f"No problems found in {rows}: nothing was written (validation only). "
                f"An import would insert {result.inserted:,} and update {result.updated:,}."
                + skipped
            )
        return (
            f"Imported {rows}: {result.inserted:,} inserted, {result.updated:,} updated, "
            f"{result.unchanged:,} unchanged." + skipped
        )
    total = ctx.get("total") or len(ctx.get("problems", []))
    return f"Nothing imported: {total:,} problem{'s' if total != 1 else ''}."


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request: Request, spec: CsvTable, status: int, **ctx: Any) -> Response:
    """The result as JSON for scripts that ask for it, else the result fragment or page."""
    if _wants_json(request):
        result: ImportResult | None = ctx.get("result")
        problems: list[Problem] = ctx.get("problems", [])
        outcome = "cancelled" if ctx.get("cancelled") else "rejected"
        if result:
            outcome = "valid" if ctx.get("dry_run") else "imported"
        body: dict[str, Any] = {"outcome": outcome, "summary": summary(ctx)}
        file_format = getattr(request.state, "csv_format", None)
        if file_format is not None:
            body["format"] = file_format.describe()
        mapping = getattr(request.state, "csv_mapping", None)
        if mapping is not None:
            body["mapping"] = {f.header: f.target.described if f.target else None
                               for f in mapping.fields}  # fmt: skip
        if result:
            body.update(rows=result.rows, inserted=result.inserted, updated=result.updated,
                        unchanged=result.unchanged, seconds=round(result.seconds, 3),
                        blank_lines_skipped=result.blank_lines)  # fmt: skip
            body["dry_run"] = bool(ctx.get("dry_run"))
            # copied straight into the table, or staged and checked first (csvio.direct)
            body["direct"] = result.direct
        else:
            token = ctx.get("error_file")
            if token:
                body["error_file"] = f"/{spec.table}/import/errors/{token}"
            body["errors"] = [asdict(p) for p in problems]
            body["error_count"] = ctx.get("total", len(problems))
            body["more_errors"] = ctx.get("more", False)
            body["options"] = OPTIONS_HELP
        return JSONResponse(body, status_code=status)
    ctx["summary"] = summary(ctx)
    ctx["file_format"] = getattr(request.state, "csv_format", None)
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
        path = "direct" if details.pop("direct", False) else "staged"
        metrics.CSV_PATHS.labels("import", spec.table, path).inc()
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

    def value_of(name: str) -> str | None:
        given = upload.fields.get(name) or request.query_params.get(name)
        if given is None and name == "encoding" and upload.charset:
            # a raw body's charset says how it is written, unless the query says otherwise
            return charset_encoding(upload.charset)
        return given

    try:
        options = ImportOptions.parse(value_of)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    token = request.query_params.get("progress")
    progress = None
    if phases.valid_token(token):
        assert token is not None
        progress = await asyncio.to_thread(phases.Progress, current_staff(request).id, token)
    request.state.csv_progress = progress
    try:
        async with asyncio.timeout_at(deadline):
            result = await _watched(
                request,
                _receive_and_import(request, spec, upload, options, deadline, value_of),
                progress,
            )
    except ImportCancelled as exc:
        await _finish(progress, "cancelled")
        await _audit_failure(request, spec, upload, options, "aborted", reason=str(exc))
        return _answer(request, spec, 200, cancelled=str(exc), options=options)
    except DryRun as run:
        await _audit_failure(request, spec, upload, options, "validated", rows=run.result.rows)
        return _answer(request, spec, 200, result=run.result, options=options, dry_run=True)
    except (HeaderError, ImportRejected) as exc:
        await _drain(upload)
        if isinstance(exc, HeaderError):
            problems, more, total = [Problem(str(exc), line=1)], False, 1
        else:
            problems, more, total = exc.problems, exc.more, exc.total
        await _audit_failure(request, spec, upload, options, "rejected", errors=total)
        error_file = exc.error_file if isinstance(exc, ImportRejected) else None
        return _answer(
            request, spec, 422, problems=problems, more=more, total=total, options=options,
            error_file=error_file,
        )  # fmt: skip
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
    finally:
        await _finish(progress, "finished")
    return _answer(request, spec, 200, result=result, options=options)


class ImportCancelled(Exception):
    """The sender cancelled the import, or left: its transaction was rolled back."""


async def _finish(progress: phases.Progress | None, outcome: str) -> None:
    if progress is not None and not progress.finished:
        await asyncio.to_thread(progress.finish, outcome)


async def _watched(
    request: Request, work: Coroutine[Any, Any, ImportResult], progress: Any
) -> ImportResult:
    """Run the import; cancel it (rolling its transaction back) when the page asks to, or
    when the client goes away once the file is received."""
    task = asyncio.create_task(work)
    reason: list[str] = []

    async def watch() -> None:
        listening: asyncio.Task[Any] | None = None
        try:
            while not task.done():
                if progress is not None and await asyncio.to_thread(lambda: progress.cancelled):
                    reason.append("Cancelled: nothing was imported.")
                    task.cancel()
                    return
                if listening is None and getattr(request.state, "csv_received", False):
                    # the body is read: the next message is the client leaving
                    listening = asyncio.create_task(request.receive())
                if listening is not None and listening.done():
                    if listening.result().get("type") == "http.disconnect":
                        reason.append("The page was closed: nothing was imported.")
                        task.cancel()
                        return
                    listening = None
                await asyncio.sleep(CANCEL_POLL_SECONDS)
        finally:
            if listening is not None and not listening.done():
                listening.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if reason and not _being_cancelled():
            raise ImportCancelled(reason[0]) from None
        raise
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def _being_cancelled() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


async def _receive_and_import(
    request: Request,
    spec: CsvTable,
    upload: Upload,
    options: ImportOptions,
    deadline: float,
    value_of: Callable[[str], str | None],
) -> ImportResult:
    """Receive the file to disk, then take a connection and run the transaction; a direct
    import of a file that arrives fast starts copying before its end is in (csvio.incoming).

    Nothing in the database is held while the client sends slowly (see csvio.spool).
    """
    header, rest = await split_header(upload.chunks())
    screen = _screen_while_receiving(spec, options, header, value_of)
    progress = request.state.csv_progress

    async def report(phase: str, rows: int | None) -> None:
        if progress is not None:
            await asyncio.to_thread(progress.phase, phase, rows)

    async def received() -> None:
        request.state.csv_received = True
        await report("received", None)

    incoming = Incoming(header.raw, rest, screen.take if screen else None, received)
    try:
        sample = await incoming.head(SAMPLE_BYTES)
        request.state.csv_format = file_format = resolve(
            options, header.raw, sample, bom=header.bom
        )
        try:
            mapping = _mapping(spec, options, header, file_format, value_of)
        except ImportRejected:
            await incoming.whole()  # the answer comes once the whole file is in
            raise
        request.state.csv_mapping = mapping
        direct = plan(spec, mapping, options)
        follow = incoming.arriving and can_follow(direct, file_format.delimiter, screen)
        if not follow:
            await incoming.whole()

        async def run(arriving: Incoming | None) -> ImportResult:
            async def on_success(result: ImportResult) -> None:
                await _audit_import(
                    conn, request, spec, upload, options, "imported",
                    rows=result.rows, inserted=result.inserted, updated=result.updated,
                    direct=result.direct,
                )  # fmt: skip

            seconds_left = deadline - asyncio.get_running_loop().time()
            async with db.connection(request) as conn:
                return await import_csv(
                    conn,
                    spec,
                    header,
                    mapping,
                    options,
                    incoming.file,
                    on_success,
                    seconds_left=seconds_left,
                    file_format=file_format,
                    owner=current_staff(request).id,
                    progress=report,
                    screened=screen,
                    arriving=arriving,
                    pool=request.app.state.pool,
                )

        try:
            return await run(incoming if follow else None)
        except UploadStalled:
            # rolled back and the connection given back: the rest is awaited holding nothing
            log.warning("import into %s: the upload slowed down; waiting for all of it", spec.table)
            metrics.CSV_PATHS.labels("import", spec.table, "direct_gave_up").inc()
            await incoming.whole()
            return await run(None)
    finally:
        await incoming.close()


def _mapping(
    spec: CsvTable,
    options: ImportOptions,
    header: CsvHeader,
    file_format: FileFormat,
    value_of: Callable[[str], str | None],
) -> ColumnMapping:
    names = file_format.names(header.raw)
    return map_header(
        spec,
        names,
        options.mode,
        ignore_unknown=options.ignore_unknown,
        chosen=chosen_mapping(value_of, len(names)),
        decimal_comma=file_format.decimal_comma,
    )


def _screen_while_receiving(
    spec: CsvTable, options: ImportOptions, header: CsvHeader, value_of: Callable[[str], str | None]
) -> Screen | None:
    """The direct path's screens as the header alone tells them (its format read from the
    header), to be fed the rest of the file while it arrives; the import uses what they
    found only if the whole file calls for the same screens."""
    file_format = resolve(options, header.raw, header.raw, bom=header.bom)
    try:
        mapping = _mapping(spec, options, header, file_format, value_of)
    except ImportRejected:
        return None  # reported once the file is in, as before
    direct = plan(spec, mapping, options)
    screening = direct.screening(file_format.delimiter) if direct is not None else None
    return Screen(screening) if screening is not None else None


async def import_page(request: Request, table: Table) -> Response:
    return render(request, PAGE, PAGE, _context(request, csv_table(table)))


async def import_file(request: Request, table: Table) -> Response:
    return await _import(request, csv_table(table))


def _filename(table: str) -> str:
    return f"{table}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.csv"


async def _export(
    request: Request, spec: CsvTable, query: ListQuery, dialect: ExportDialect
) -> Response:
    headers = {
        "Content-Disposition": f'attachment; filename="{_filename(spec.table)}"',
        "Cache-Control": "no-store",
    }
    if request.method == "HEAD":
        # what a download would be, without running it (nor auditing it)
        return Response(media_type="text/csv; charset=utf-8", headers=headers)
    if request.method == "GET" and not export_gate.proves_same_origin(request):
        return export_gate.confirm_page(request, spec)
    where, order_by, args = query.filter_sql()
    raw = request.query_params.get("raw", "") in {"1", "true", "yes"}
    sql = export_query(
        spec, where, order_by, raw=raw, names=dialect.names, decimal_comma=dialect.decimal_comma
    )
    # the filters as the export applied them, not whatever else the URL carried
    filters = query.params()
    staff = current_staff(request)
    ip = client_ip(request)

    async def on_finish(conn: asyncpg.Connection, outcome: ExportOutcome) -> None:
        result = "completed" if outcome.completed else "aborted"
        metrics.CSV_TRANSFERS.labels("export", spec.table, result).inc()
        path = "halves" if outcome.halves else "serial"
        metrics.CSV_PATHS.labels("export", spec.table, path).inc()
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
                "excel": dialect.excel,
                "delimiter": dialect.delimiter,
                "columns": list(dialect.names) if dialect.names else "all",
                "rows": outcome.rows,
                "outcome": "completed" if outcome.completed else "aborted",
            },
            ip=ip,
        )

    settings = request.app.state.settings
    pool = replica.read_pool(request)
    halves = None
    if pool is request.app.state.pool and not settings.database_pooler:
        halves = _split_plan(request, spec, query, (where, order_by), raw, dialect)
    # the COPY runs on the connection the request checked the session on, when it is of the
    # same pool: an export holds one connection, never two
    conn = db.hand_over(request) if pool is request.app.state.pool else None
    return await start_export(
        pool,
        settings.pool_acquire_timeout,
        sql,
        args,
        on_finish,
        request.app.state.exports,
        headers,
        audit_pool=request.app.state.pool,
        delimiter=dialect.delimiter,
        transform=CrlfRows() if dialect.excel else None,
        prefix=UTF8_BOM if dialect.excel else b"",
        halves=halves,
        conn=conn,
    )


def _split_plan(
    request: Request,
    spec: CsvTable,
    query: ListQuery,
    clauses: tuple[str, str],
    raw: bool,
    dialect: ExportDialect,
) -> SplitPlan | None:
    """How the export may be produced in two halves: sorted by the table's single integer
    key only (csvio.export_split)."""
    key = query.table.primary_key
    if len(key) != 1 or key[0].kind is not Kind.INTEGER or query.sort is None:
        return None
    if query.sort.name != key[0].name:
        return None
    where, order_by = clauses

    def narrowed_query(condition: str) -> str:
        return export_query(
            spec, narrowed(where, f"t.{condition}"), order_by, raw=raw, names=dialect.names,
            decimal_comma=dialect.decimal_comma,
        )  # fmt: skip

    return SplitPlan(
        table=spec.qualified,
        key=key[0].quoted,
        descending=query.descending,
        query=narrowed_query,
        min_bytes=request.app.state.settings.export_split_min_mb << 20,
    )


async def export_file(request: Request, table: Table) -> Response:
    try:
        query = ListQuery.from_params(table, request.query_params)
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    spec = csv_table(table)
    return await _export(request, spec, query, dialect_of(request, table, spec))


async def error_file(request: Request, table: Table) -> Response:
    """A rejected import's list of every problem, for the staff member who sent the file."""
    found = error_files.find(current_staff(request).id, request.path_params["token"])
    if found is None:
        raise HTTPException(404, "This list of problems is no longer kept: import the file again.")
    return FileResponse(
        found,
        media_type="text/csv; charset=utf-8",
        filename=f"{table.slug}-problems.csv",
        headers={"Cache-Control": "no-store"},
    )


async def import_progress(request: Request, table: Table) -> Response:
    """How far the sender's import with this token is (polled by the page)."""
    token = request.path_params["token"]
    state = None
    if phases.valid_token(token):
        state = await asyncio.to_thread(phases.read, current_staff(request).id, token)
    if state is None:
        raise HTTPException(404, "No import with this token is running.")
    return JSONResponse(state, headers={"Cache-Control": "no-store"})


async def import_cancel(request: Request, table: Table) -> Response:
    """Ask the sender's running import to stop; its transaction is rolled back."""
    token = request.path_params["token"]
    owner = current_staff(request).id
    if not phases.valid_token(token) or not await asyncio.to_thread(phases.cancel, owner, token):
        raise HTTPException(404, "No import with this token is running.")
    return JSONResponse({"cancelling": True}, status_code=202)


def csv_routes() -> list[Route]:
    """Import and export for every table; before the record routes (/<table>/<key>)."""
    return [
        resource_route(page("import"), import_page, Action.IMPORT),
        resource_route(
            page("import"),
            import_file,
            Action.IMPORT,
            methods=["POST"],
            csrf_from=CsrfFrom.ENDPOINT,
        ),
        resource_route(page("import") + "/errors/{token}", error_file, Action.IMPORT),
        resource_route(page("import") + "/preview", preview_page, Action.IMPORT, methods=["POST"]),
        resource_route(page("import") + "/progress/{token}", import_progress, Action.IMPORT),
        resource_route(
            page("import") + "/progress/{token}/cancel",
            import_cancel,
            Action.IMPORT,
            methods=["POST"],
        ),
        resource_route("/{resource}/export.csv", export_file, Action.EXPORT),
        # a form POST with the CSRF token: scripts, and links from elsewhere
        resource_route("/{resource}/export.csv", export_file, Action.EXPORT, methods=["POST"]),
    ]
