"""CSV export through HTTP vs psql's COPY (SELECT ...) TO STDOUT into a file, same server and run.

    flock /tmp/bench.lock python bench/csv_export.py --rows 1000000

Loads `rows` users, then times psql copying the export's SELECT to a file, and the HTTP
export (raw, and with spreadsheet protection) read to the end; prints MB/s, ratios to psql
the server process's RSS growth and the CPU time it spent on the export (what the panel
adds to PostgreSQL's own work, which psql's COPY pays the same).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from csv_common import (
    COLUMNS,
    RssPeak,
    admin_server,
    csv_spec,
    database,
    psql_binary,
    server_pid,
    write_users_csv,
)

from admin.csvio.exporting import export_query


def psql_export(database_url: str, select: str, target: Path) -> float:
    # what `\copy (...) to file` does (the client writes the file), but as COPY TO STDOUT:
    # psql's \copy re-tokenises its query and splits literals such as U&'...'
    command = f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)"
    started = time.perf_counter()
    with open(target, "wb") as out:
        subprocess.run([psql_binary(), database_url, "-v", "ON_ERROR_STOP=1", "-qc", command],
                       stdout=out, check=True)  # fmt: skip
    return time.perf_counter() - started


def curl_download(http: httpx.Client, url: str, target: Path) -> tuple[float, float]:
    """(total seconds, seconds to first byte): a C client, like psql, so the client is not
    what is measured."""
    cookies = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    started = time.perf_counter()
    out = subprocess.run(
        # Sec-Fetch-Site as a browser sends it for the panel's own export link
        ["curl", "-sSf", "-o", str(target), "-H", f"Cookie: {cookies}",
         "-H", "Sec-Fetch-Site: same-origin",
         "-w", "%{time_starttransfer}", url],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - started, float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="csv-export-"))
    source = work / "users.csv"
    target = work / "psql-out.csv"
    write_users_csv(source, args.rows)
    try:
        with database() as url, admin_server(url) as (server, http):
            load = f"\\copy users({COLUMNS}) from '{source}' csv header"
            subprocess.run([psql_binary(), url, "-qc", load], check=True)
            subprocess.run([psql_binary(), url, "-qc", "VACUUM ANALYZE users"], check=True)
            source.unlink()
            users = csv_spec(url)
            results: dict[str, tuple[float, int, float]] = {}
            first_byte: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for _ in range(args.repeat):
                for kind, raw in (("raw", True), ("safe", False)):
                    # psql runs exactly the SELECT the HTTP export runs (same filters, same
                    # spreadsheet protection), so each ratio compares like with like
                    select = export_query(users, "", "ORDER BY id", raw=raw)
                    seconds = psql_export(url, select, target)
                    keep(results, f"psql {kind}", (seconds, target.stat().st_size, 0.0))
                    target.unlink()
                    query = "?raw=1" if raw else ""
                    before = cpu_seconds(server_pid(server))
                    with RssPeak(server_pid(server)) as rss:
                        seconds, ttfb = curl_download(
                            http, f"{server.url}/users/export.csv{query}", target
                        )
                    cpu[f"http {kind}"] = min(
                        cpu_seconds(server_pid(server)) - before, cpu.get(f"http {kind}", 1e9)
                    )
                    first_byte[f"http {kind}"] = min(ttfb, first_byte.get(f"http {kind}", ttfb))
                    keep(results, f"http {kind}", (seconds, target.stat().st_size, rss.growth_mb))
                    target.unlink()
    finally:
        for path in (source, target):
            path.unlink(missing_ok=True)
        work.rmdir()

    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{args.rows:,} rows, {results['psql raw'][1] / 1e6:.1f} MB (best of {args.repeat})")
    for label, (seconds, size, growth) in results.items():
        rate = args.rows / seconds
        line = (
            f"{label:10} {seconds:7.2f} s  {rate:12,.0f} rows/s  {size / seconds / 1e6:7.1f} MB/s"
        )
        if label.startswith("http"):
            reference = args.rows / results["psql" + label[4:]][0]
            line += (
                f"  ratio {rate / reference:.2f}x psql  server RSS growth {growth:6.1f} MB"
                f"  first bytes {first_byte[label] * 1000:.0f} ms"
                f"  server CPU {cpu[label]:.2f} s"
            )
        print(line)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def keep(results: dict[str, tuple[float, int, float]], label: str, run: tuple[float, int, float]):
    """Best time of the repeats (the machine is shared); the largest RSS growth seen."""
    if label in results:
        best = results[label]
        run = (min(best[0], run[0]), run[1], max(best[2], run[2]))
    results[label] = run


if __name__ == "__main__":
    main()
