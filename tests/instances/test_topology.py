"""The shipped topology stays one thing: the Procfile, the container (Dockerfile,
compose.yaml) and ``make run`` start the commands of config/processes.py, and every
environment variable the code reads is listed in .env.example and docs/operations.md.

No container engine runs in CI, so the container files are checked by parsing them,
not by building them."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from config import processes

ROOT = Path(__file__).resolve().parent.parent.parent
# Files whose environment reads are configuration a deployer sets.
ENV_SOURCES = [ROOT / "config" / "settings.py", ROOT / "instances" / "management" / "commands" / "runstack.py"]
CONTAINER = processes.commands(host="0.0.0.0", port="8000", web_workers="2", concurrency="4")


def test_procfile_runs_the_shipped_commands() -> None:
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    expected = processes.commands(host="0.0.0.0", port="$PORT", web_workers="$WEB_WORKERS",
                                  concurrency="$WORKER_CONCURRENCY")
    assert set(lines) == {"release", *processes.KINDS}
    for kind, argv in expected.items():
        assert shlex.split(lines[kind]) == argv, kind
    assert shlex.split(lines["release"]) == ["python", "manage.py", "migrate", "--noinput"]


def test_compose_runs_each_kind_once_with_health_checks_and_volumes() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", *processes.KINDS} <= set(services)
    for kind in processes.KINDS:
        assert services[kind]["command"] == CONTAINER[kind], kind
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["beat"]["healthcheck"]["test"][1:] == ["python", "manage.py", "runbeat", "--check"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    assert {"postgres-data", "redis-data", "relay-data"} <= set(compose["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for kind in processes.KINDS:
        # Every Relay process waits for a healthy database and broker and the migration.
        depends = services[kind]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_is_non_root_and_its_command_is_the_web_process() -> None:
    text = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and json.loads(cmd[1]) == CONTAINER["web"]
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text


def env_reads(source: str) -> set[str]:
    """Names of the environment variables a module reads: ``env.<cast>("NAME")``,
    ``env("NAME")``, ``_secret("NAME")`` and ``os.environ.get("NAME")`` / ``os.environ["NAME"]``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            target = ast.unparse(func)
            if (
                target.startswith("env.") and target != "env.db_url_config"
                or target in ("env", "_secret", "os.environ.get", "os.getenv")
            ):
                names.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


def missing_from(names: set[str], text: str, pattern: str) -> set[str]:
    return {name for name in names if not re.search(pattern.format(re.escape(name)), text, re.M)}


def all_env_reads() -> set[str]:
    names: set[str] = set()
    for path in ENV_SOURCES:
        names |= env_reads(path.read_text())
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_the_scanner_finds_what_settings_read() -> None:
    names = all_env_reads()
    # A scanner that found nothing would make the two tests below pass vacuously.
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DB_POOL", "WEBHOOK_RETRY_SCHEDULE", "HOST",
            "WEB_WORKERS"} <= names
    assert len(names) > 60


ENV_EXAMPLE = r"^#? ?{}="
OPERATIONS = r"`{}`"


def test_every_variable_read_is_in_env_example() -> None:
    assert missing_from(all_env_reads(), (ROOT / ".env.example").read_text(), ENV_EXAMPLE) == set()


def test_every_variable_read_is_in_operations_doc() -> None:
    assert missing_from(all_env_reads(), (ROOT / "docs" / "operations.md").read_text(), OPERATIONS) == set()


@pytest.mark.parametrize(("pattern", "listing"), [(ENV_EXAMPLE, "# A_VAR=1\n"), (OPERATIONS, "| `A_VAR` | 1 |\n")])
def test_a_new_unlisted_variable_fails_the_check(pattern: str, listing: str) -> None:
    source = 'X = env.int("A_VAR", default=1)\nY = _secret("NEW_SECRET", "")\nZ = os.environ["NEW_ONE"]\n'
    assert env_reads(source) == {"A_VAR", "NEW_SECRET", "NEW_ONE"}
    assert missing_from(env_reads(source), listing, pattern) == {"NEW_SECRET", "NEW_ONE"}
