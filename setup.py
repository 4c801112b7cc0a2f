"""Installs templates/ and static/ (every file, subdirectories included) under
share/pg-admin-panel, where admin/web/paths.py finds them when the package is not a checkout.
Everything else about the package is in pyproject.toml."""

from pathlib import Path

from setuptools import setup

SHARE = Path("share/pg-admin-panel")


def data_files(*tops: str) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for top in tops:
        for path in sorted(Path(top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                groups.setdefault(str(SHARE / path.parent), []).append(str(path))
    return sorted(groups.items())


setup(data_files=data_files("templates", "static"))
