"""Does a fresh install of ferkit's dependency ranges get the majors CI tests?

Resolves pyproject.toml's dependencies (and its `test` extra) as a new environment would
(pip install --dry-run --ignore-installed --report -, from the package index) and compares
each resolved version's major with requirements.txt's pin. Prints one line per package and
exits 1 when any differs: a range then admits a major that CI has not tested.

Usage:
    python3 .ci/check_dependency_majors.py
"""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def major(version: str) -> int:
    return int(re.match(r"\d+", version).group())


def pinned() -> dict[str, str]:
    """requirements.txt's pins, {name: version}."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonical(name)] = version
    return pins


def requirements() -> list[str]:
    """What installing ferkit[test] asks for: pyproject's dependencies and test extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["test"]]


def resolved(requirements: list[str]) -> dict[str, str]:
    """{name: version} pip would install into an empty environment."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run",
                           "--ignore-installed", "--quiet", "--report", "-", *requirements],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pip could not resolve pyproject.toml's dependencies:\n{done.stderr}")
    report = json.loads(done.stdout)
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in report["install"]}


def main() -> int:
    pins, fresh = pinned(), resolved(requirements())
    differ = []
    for name, version in sorted(pins.items()):
        got = fresh.get(name)
        same = got is not None and major(got) == major(version)
        print(f"{name}: requirements.txt {version}, fresh resolve {got}"
              f"{'' if same else '  <- another major'}")
        differ += [] if same else [name]
    if differ:
        print(f"a fresh install gets another major than CI tests: {', '.join(differ)}; bound "
              f"them in pyproject.toml below the next untested major")
        return 1
    print(f"all {len(pins)} pinned packages resolve to the pinned major")
    return 0


if __name__ == "__main__":
    sys.exit(main())
