"""demo-data and simulate-orders: realistic data for trying the panel and benchmarking it."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any) -> None:
    demo = commands.add_parser("demo-data", help="load realistic fake users and orders (COPY)")
    demo.add_argument("--users", type=int, default=10_000)
    demo.add_argument("--orders", type=int, default=20_000)
    demo.set_defaults(handler=_not_yet)

    sim = commands.add_parser("simulate-orders", help="create orders and status changes")
    sim.add_argument("--rate", type=float, default=2.0, help="orders per second")
    sim.set_defaults(handler=_not_yet)


def _not_yet(settings: object, args: argparse.Namespace) -> int:
    raise SystemExit("error: not available in this build")
