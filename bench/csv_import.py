"""CSV import through HTTP vs psql \\copy, on the same server in the same run.

    flock /tmp/bench.lock python bench/csv_import.py --rows 1000000

Prints rows/s for psql \\copy, HTTP insert and HTTP upsert (every row already there, so the
round-trip case), a dry run (validate only) of the same file into the full table, and the
error path (a file with --errors problems scattered through it, every one reported; with
--last-row-error also the file whose only problem is its last row), their
ratios to psql or to the insert, and the server process's RSS growth. psql and the HTTP
insert run --rounds times each, in turn (see csv_common.alternating); their medians are
compared.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from csv_common import (
    COLUMNS,
    admin_server,
    alternating,
    checkpoint,
    database,
    post_csv,
    psql_binary,
    run_sql,
    write_users_csv,
)


def psql_copy(database_url: str, path: Path) -> float:
    command = f"\\copy users({COLUMNS}) from '{path}' csv header"
    started = time.perf_counter()
    subprocess.run([psql_binary(), database_url, "-v", "ON_ERROR_STOP=1", "-qc", command],
                   check=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--errors", type=int, default=10_000, help="0: no error-path run")
    parser.add_argument("--skip-upsert", action="store_true", help="insert and errors only")
    parser.add_argument(
        "--rounds", type=int, default=3, help="psql and HTTP inserts, in turn (medians kept)"
    )
    parser.add_argument(
        "--last-row-error",
        action="store_true",
        help="also a file whose only problem is its last row (COPY reads it all before failing)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="csv-import-"))
    path = work / "users.csv"
    broken = work / "broken.csv"
    size = write_users_csv(path, args.rows)
    if args.errors:
        write_users_csv(broken, args.rows, args.errors)
    last = work / "last.csv"
    if args.last_row_error:
        shutil.copyfile(path, last)
        with open(last, "a", encoding="utf-8") as out:
            out.write("zzlast,zzlast@example.com,Last,maybe,2024-05-01 12:00:00+00\n")
    print(f"file: {args.rows:,} rows, {size / 1e6:.1f} MB")
    try:
        with database() as url, admin_server(url) as (server, http):
            results: dict[str, tuple[float, float]] = {}

            def http_import(label: str, query: str) -> float:
                response, seconds, grew = post_csv(server, http, f"/users/import?{query}", path)
                assert response.status_code == 200, response.text[:2000]
                body = response.json()
                assert body["rows"] == args.rows, body
                growth = max(grew, results.get(label, (0.0, 0.0))[1])
                results[label] = (seconds, growth)
                print(f"http {label}: { {k: v for k, v in body.items() if k != 'mapping'} }")
                return seconds

            def empty_table() -> None:
                run_sql(url, "TRUNCATE users CASCADE")
                checkpoint(url)

            inserts = alternating(
                args.rounds,
                {
                    "psql": lambda: psql_copy(url, path),
                    "insert": lambda: http_import("insert", "mode=insert"),
                },
                empty_table,
            )
            for label, runs in inserts.items():
                print(f"{label} runs: " + " ".join(f"{r:.2f}" for r in runs) + " s")
            psql_seconds = statistics.median(inserts["psql"])
            results["insert"] = (statistics.median(inserts["insert"]), results["insert"][1])
            # the rounds end with a load: the table holds the file's rows
            assert run_sql(url, "SELECT count(*) FROM users") == args.rows
            if not args.skip_upsert:
                http_import("upsert", "mode=upsert")
                http_import("dry run", "mode=upsert&dry_run=1")
            assert run_sql(url, "SELECT count(*) FROM users") == args.rows
            # the error path: into the empty table, like the insert it is compared with
            run_sql(url, "TRUNCATE users CASCADE")
            insert = "/users/import?mode=insert"
            if args.errors:
                response, seconds, grew = post_csv(server, http, insert, broken)
                assert response.status_code == 422, response.text[:2000]
                body = response.json()
                results["errors"] = (seconds, grew)
                print(f"http error path: {body['summary']} (error file: {body.get('error_file')})")
                assert run_sql(url, "SELECT count(*) FROM users") == 0
            if args.last_row_error:
                response, seconds, grew = post_csv(server, http, insert, last)
                assert response.status_code == 422, response.text[:2000]
                results["last row"] = (seconds, grew)
                print(f"http last row bad: {response.json()['summary']}")
                assert run_sql(url, "SELECT count(*) FROM users") == 0
    finally:
        path.unlink(missing_ok=True)
        broken.unlink(missing_ok=True)
        last.unlink(missing_ok=True)
        work.rmdir()

    psql_rate = args.rows / psql_seconds
    print(f"psql \\copy          {psql_seconds:7.2f} s  {psql_rate:12,.0f} rows/s")
    insert_seconds = results["insert"][0]
    for mode, (seconds, growth) in results.items():
        rate = args.rows / seconds
        print(
            f"http import {mode:7} {seconds:7.2f} s  {rate:12,.0f} rows/s  "
            f"ratio {rate / psql_rate:.2f}x psql  {seconds / insert_seconds:.2f}x the insert's "
            f"time  server RSS growth {growth:6.1f} MB"
        )


if __name__ == "__main__":
    main()
