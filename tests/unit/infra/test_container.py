"""infra/container/Containerfile, linted (no registry is reachable from CI to pull a base
image, so it is not built there): multi-stage, non-root, `dredge run` in exec form as the
entrypoint so SIGTERM reaches the daemon, a /healthz health check, and every COPY source present."""

from __future__ import annotations

import json
import re

from tests.unit.infra.conftest import INFRA, ROOT

CONTAINERFILE = INFRA / "container" / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_multi_stage_and_the_runtime_copies_only_the_venv() -> None:
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    copies = [rest for word, rest in final_stage() if word == "COPY"]
    assert "--from=build /opt/dredge /opt/dredge" in copies


def test_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_the_daemon_is_pid_1_and_gets_sigterm() -> None:
    stage = dict(final_stage())
    entrypoint = json.loads(stage["ENTRYPOINT"])  # exec form: no shell between
    assert entrypoint == ["/opt/dredge/bin/dredge", "run"]
    assert json.loads(stage["CMD"]) == ["--config", "/etc/dredge/dredge.toml"]
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert "/healthz" in stage["HEALTHCHECK"]


def test_copy_sources_exist() -> None:
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), src
