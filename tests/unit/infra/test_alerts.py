"""infra/alerts: `promtool check rules` and `promtool test rules` (promtool built by .ci/run
into infra/alerts/bin), and every Dredge metric the rules use is one the package exports."""

from __future__ import annotations

import re
import subprocess

from tests.unit.infra.conftest import INFRA, ROOT, tool

ALERTS = INFRA / "alerts"


def promtool() -> str:
    return tool("promtool", ALERTS / "bin" / "promtool")


def test_promtool_check_rules() -> None:
    proc = subprocess.run([promtool(), "check", "rules", "dredge.rules.yml"], cwd=ALERTS,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules() -> None:
    proc = subprocess.run([promtool(), "test", "rules", "tests.yml"], cwd=ALERTS,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_use_only_metrics_dredge_exports() -> None:
    rules = (ALERTS / "dredge.rules.yml").read_text()
    expressions = "\n".join(re.findall(r"expr: (.*(?:\n {10,}.*)*)", rules))
    used = set(re.findall(r"\b(dredge_[a-z_]+)\b", expressions))
    source = "\n".join(p.read_text() for p in (ROOT / "dredge").rglob("*.py"))
    exported = set(re.findall(r"\"(dredge_[a-z_]+)\"", source))
    assert used, "no dredge metric found in the rules"
    assert used <= exported, f"not exported by dredge: {sorted(used - exported)}"
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    tested = set(re.findall(r"alertname: (\w+)", (ALERTS / "tests.yml").read_text()))
    assert alerts == tested, f"alerts without a promtool test: {sorted(alerts - tested)}"
