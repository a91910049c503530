"""The package as a user gets it: a wheel, installed (not editable) into a fresh venv, migrates an empty database.

- The wheel holds Ingestro's own packages only (``ingestro``, ``consumers``, ``projections``): no generic
  top-level name such as ``db`` or ``tests`` that could clash in site-packages, and no benchmark code.
- The SQL migrations travel inside it (``ingestro.migrations``), so the installed ``ingestro migrate`` applies
  every one of ``db/`` without a source checkout.
- pyproject.toml's explicit ``packages`` list is the tree's package directories, so a new subpackage cannot be
  left out of the wheel unnoticed.

Building and installing take a minute (pip fetches the dependencies from its index, or its cache): one wheel
and one venv per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ingestro.devtools.servers import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: Importable from a source checkout (`make bench`), never installed.
SOURCE_ONLY = {"ingestro.devtools.bench"}
#: What a wheel build must not see: local state, caches, and an in-tree build/ that could hold stale modules.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".ingestro", "build", "dist", "*.egg-info", "__pycache__", "*_cache", ".hypothesis", "bench-*"
)

F = TypeVar("F", bound=Callable[..., object])


def installed(test: F) -> F:
    """Builds the wheel or installs it: the whole package, taking a minute the first time in a session."""
    return pytest.mark.system(pytest.mark.slow(pytest.mark.timeout(900)(test)))


def pip(python: Path | str, *args: str) -> None:
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(python), "-m", "pip", "--quiet", *args], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the source tree."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source))
    [built] = (work / "dist").glob("ingestro-*.whl")
    return built


@pytest.fixture(scope="session")
def venv(wheel: Path) -> Path:
    """A fresh venv with the wheel installed (and its dependencies from pip's index); its bin directory."""
    home = wheel.parent.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    pip(home / "bin" / "python", "install", str(wheel))
    return home / "bin"


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's PostgreSQL, dropped afterwards."""
    name = "packaged"
    subprocess.run(["psql", postgres_server.url, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", postgres_server.url, "-qc", f"CREATE DATABASE {name}"], check=True)
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    subprocess.run(["psql", postgres_server.url, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


def names_in(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_package_list_is_the_trees_packages() -> None:
    listed = set(SETUPTOOLS["packages"])
    tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("ingestro", "consumers", "projections")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert tree - SOURCE_ONLY - listed == set(), "packages in the tree that the wheel would leave out"
    assert listed - tree == {"ingestro.migrations"}, "listed packages that are not in the tree"
    assert SETUPTOOLS["package-dir"] == {"ingestro.migrations": "db"}
    assert not any(package == name or package.startswith(f"{name}.") for package in listed for name in SOURCE_ONLY)


@installed
def test_the_wheel_holds_ingestros_packages_only(wheel: Path) -> None:
    names = names_in(wheel)
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"ingestro", "consumers", "projections"}
    assert not [name for name in names if name.startswith("ingestro/devtools/bench/")], "bench is source-only"
    shipped = sorted(name.rsplit("/", 1)[1] for name in names if name.startswith("ingestro/migrations/"))
    assert [name for name in shipped if name.endswith(".sql")] == sorted(p.name for p in (ROOT / "db").glob("*.sql"))
    assert "ingestro/py.typed" in names
    assert any(name.startswith("ingestro/datasets/") and name.endswith(".json") for name in names)


@installed
def test_the_installed_command_migrates_an_empty_database(venv: Path, empty_database: str, tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("INGESTRO_", "PYTHON"))}
    environment["INGESTRO_DATABASE_URL"] = empty_database
    # Outside the checkout, so nothing can come from the source tree.
    result = subprocess.run(
        [str(venv / "ingestro"), "migrate"], capture_output=True, text=True, env=environment, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    migrations = sorted(path.name for path in (ROOT / "db").glob("*.sql"))
    lines = result.stdout.splitlines()
    assert lines[0] == f"applied {len(migrations)} migration(s): {', '.join(migrations)}"
    assert "dataset contacts: created (version 1)" in lines
    where = subprocess.run(
        [str(venv / "python"), "-c", "import ingestro; print(ingestro.__file__)"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=True,
    )
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout, "the installed copy, not the tree"
