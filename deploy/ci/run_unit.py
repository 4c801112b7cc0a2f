"""Start a systemd unit's service the way systemd would, where systemd is not running.

    python deploy/ci/run_unit.py deploy/pg-admin@.service 8001 --root . --env-file env \
        --state work/state --log app-8001.log --pid app-8001.pid

Reads Environment= and EnvironmentFile= (given by --env-file instead of the unit's path),
substitutes %i, expands ${VAR}, maps the unit's /opt/pg-admin-panel to --root and its state
directory (%S, StateDirectory=) to --state, created as systemd would, runs each
ExecStartPre and then ExecStart in the background, its pid written to --pid.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

UNIT_ROOT = "/opt/pg-admin-panel"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def service_lines(unit: Path) -> list[tuple[str, str]]:
    section, found = "", []
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip().strip('"')
    return env


def specifiers(value: str, instance: str, state: str) -> str:
    return value.replace("%i", instance).replace("%S", state)


def command(value: str, instance: str, root: str, state: str, env: dict[str, str]) -> list[str]:
    value = specifiers(value, instance, state).replace(UNIT_ROOT, root)
    value = _VAR.sub(lambda m: env.get(m.group(1), ""), value)
    return shlex.split(value)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("unit", type=Path)
    parser.add_argument("instance")
    parser.add_argument("--root", required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--pid", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True, help="what %S stands for")
    args = parser.parse_args()
    root = str(Path(args.root).resolve())
    state = str(args.state.resolve())
    lines = service_lines(args.unit)
    env = dict(os.environ)
    for key, value in lines:
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = specifiers(setting, args.instance, state)
        elif key == "StateDirectory":
            (Path(state) / value).mkdir(parents=True, exist_ok=True, mode=0o700)
    env.update(read_env_file(args.env_file))
    workdir = next((v for k, v in lines if k == "WorkingDirectory"), UNIT_ROOT)
    workdir = workdir.replace(UNIT_ROOT, root)
    with args.log.open("ab") as log:
        for key, value in lines:
            if key == "ExecStartPre":
                subprocess.run(
                    command(value, args.instance, root, state, env),
                    cwd=workdir, env=env, stdout=log, stderr=log, check=True,
                )  # fmt: skip
        start = next(v for k, v in lines if k == "ExecStart")
        process = subprocess.Popen(
            command(start, args.instance, root, state, env),
            cwd=workdir, env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    args.pid.write_text(f"{process.pid}\n")
    print(f"started {args.unit.name} {args.instance} as pid {process.pid}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
