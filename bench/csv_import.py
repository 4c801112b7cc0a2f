"""CSV import through HTTP vs psql \\copy, on the same server in the same run.

    flock /tmp/bench.lock python bench/csv_import.py --rows 1000000

Prints rows/s for psql \\copy, HTTP insert and HTTP upsert (every row already there, so the
round-trip case), their ratios to psql, and the server process's RSS growth.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from csv_common import (
    COLUMNS,
    RssPeak,
    admin_server,
    database,
    file_chunks,
    psql_binary,
    run_sql,
    server_pid,
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="csv-import-"))
    path = work / "users.csv"
    size = write_users_csv(path, args.rows)
    print(f"file: {args.rows:,} rows, {size / 1e6:.1f} MB")
    try:
        with database() as url, admin_server(url) as (server, http):
            psql_seconds = psql_copy(url, path)
            assert run_sql(url, "SELECT count(*) FROM users") == args.rows
            run_sql(url, "TRUNCATE users CASCADE")
            results: dict[str, tuple[float, float]] = {}
            for mode in ("insert", "upsert"):
                with RssPeak(server_pid(server)) as rss:
                    started = time.perf_counter()
                    response = http.post(
                        f"/users/import?mode={mode}",
                        content=file_chunks(path),
                        headers={"Content-Type": "text/csv", "Accept": "application/json"},
                    )
                    seconds = time.perf_counter() - started
                assert response.status_code == 200, response.text[:2000]
                body = response.json()
                assert body["rows"] == args.rows, body
                results[mode] = (seconds, rss.growth_mb)
                print(f"http {mode}: {body}")
            assert run_sql(url, "SELECT count(*) FROM users") == args.rows
    finally:
        path.unlink(missing_ok=True)
        work.rmdir()

    psql_rate = args.rows / psql_seconds
    print(f"psql \\copy          {psql_seconds:7.2f} s  {psql_rate:12,.0f} rows/s")
    for mode, (seconds, growth) in results.items():
        rate = args.rows / seconds
        print(
            f"http import {mode:7} {seconds:7.2f} s  {rate:12,.0f} rows/s  "
            f"ratio {rate / psql_rate:.2f}x psql  server RSS growth {growth:6.1f} MB"
        )


if __name__ == "__main__":
    main()
