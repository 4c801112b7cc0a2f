"""Where templates/ and static/ are: beside the package in a checkout, or under the prefix."""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]
_INSTALLED = Path(sys.prefix) / "share" / "pg-admin-panel"


def _find(name: str, marker: str) -> Path:
    # a marker file, not just the directory: site-packages may hold some other `templates/`
    for base in (_CHECKOUT, _INSTALLED):
        candidate = base / name
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(
        f"cannot find the {name}/ directory (looked in {_CHECKOUT} and {_INSTALLED})"
    )


TEMPLATES_DIR = _find("templates", "base.html")
STATIC_DIR = _find("static", "admin.css")
