"""Where templates/ and static/ are: beside the package in a checkout, or under the prefix."""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_INSTALLED = Path(sys.prefix) / "share" / "pg-admin-panel"


def _find(name: str) -> Path:
    for base in (_CHECKOUT, _INSTALLED):
        candidate = base / name
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        f"cannot find the {name}/ directory (looked in {_CHECKOUT} and {_INSTALLED})"
    )


TEMPLATES_DIR = _find("templates")
STATIC_DIR = _find("static")
