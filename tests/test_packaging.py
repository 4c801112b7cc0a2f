"""The built wheel carries every template and static file, and an installed copy finds them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.cli import ROOT

SHARE = "pg_admin_panel-0.1.0.data/data/share/pg-admin-panel"
PACKAGE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
PACKAGE_DIRS = ("admin", "templates", "static")

CHECK_INSTALLED = """
import json
import admin, admin.web.paths
from starlette.testclient import TestClient
from admin.app import create_app
from admin.settings import Settings

settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none",
                    listen_database_url=None, data_dir=__import__("pathlib").Path("."),
                    secret_key="installed-check-secret-key")
client = TestClient(create_app(settings))
css = client.get("/static/admin.css")
missing = client.get("/no/such/page/here", headers={"Accept": "text/html"})
print(json.dumps({
    "package": admin.__file__,
    "templates": str(admin.web.paths.TEMPLATES_DIR),
    "static": str(admin.web.paths.STATIC_DIR),
    "css": css.status_code,
    "missing": missing.status_code,
    "missing_is_page": "<html" in missing.text and "csrf-token" in missing.text,
}))
"""


def shipped_files() -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for top in ("templates", "static")
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def copy_package_source(target: Path) -> None:
    """The files a build needs, copied so that building writes nothing into the checkout."""
    target.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in PACKAGE_DIRS:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.slow
async def test_installed_wheel_has_all_templates_and_static_files(tmp_path: Path):
    source = tmp_path / "src"
    copy_package_source(source)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        timeout=180,
        capture_output=True,
    )
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = shipped_files()
    assert any("/" in name.removeprefix("templates/") for name in expected)  # subdirectories
    assert {f"{SHARE}/{name}" for name in expected} <= names
    migrations = [p.name for p in (ROOT / "admin" / "migrations").glob("*.sql")]
    assert {f"admin/migrations/{name}" for name in migrations} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        check=True,
        timeout=180,
        capture_output=True,
    )  # fmt: skip
    # The dependencies come from this environment; `admin` itself only from the venv.
    result = subprocess.run(
        [str(python), "-c", CHECK_INSTALLED],
        cwd=tmp_path,
        env={"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    prefix = venv.resolve()
    assert Path(found["package"]).resolve().is_relative_to(prefix)
    assert Path(found["templates"]) == prefix / "share" / "pg-admin-panel" / "templates"
    assert Path(found["static"]) == prefix / "share" / "pg-admin-panel" / "static"
    installed = sorted(
        str(path.relative_to(prefix / "share" / "pg-admin-panel"))
        for path in (prefix / "share" / "pg-admin-panel").rglob("*")
        if path.is_file()
    )
    assert installed == expected
    assert found["css"] == 200
    assert found["missing"] == 404
    assert found["missing_is_page"]
