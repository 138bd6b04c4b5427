"""examples/prometheus/: the recording rules and alerts pass `promtool check rules`, and their unit tests pass.

The unit tests (hoptel-alerts.test.yml, run with `promtool test rules`) feed input series to the rules and check
that the burn-rate alerts fire when the error budget burns fast or slowly and stay quiet inside the SLO. That the
rules return data from a real Prometheus scraping a hoptel service is tested in test_rules_and_dashboard_live.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "examples" / "prometheus"
RECORDING_RULES = RULES_DIR / "hoptel-rules.yml"
ALERTS = RULES_DIR / "hoptel-alerts.yml"
RULE_TESTS = RULES_DIR / "hoptel-alerts.test.yml"
BURN_RATE_ALERTS = {
    "HoptelGrpcErrorBudgetBurnFast",
    "HoptelGrpcErrorBudgetBurnSlow",
    "HoptelHttpErrorBudgetBurnFast",
    "HoptelHttpErrorBudgetBurnSlow",
}
PROMTOOL_TIMEOUT_S = 120.0


def _promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )


def _names(path: Path, kind: str) -> list[str]:
    return re.findall(rf"^\s+- {kind}: (\S+)$", path.read_text(), re.MULTILINE)


@pytest.mark.parametrize("path", [RECORDING_RULES, ALERTS], ids=lambda path: path.name)
def test_promtool_accepts_the_rule_files(promtool: str, path: Path) -> None:
    """`promtool check rules` succeeds on each file and finds every rule in it."""
    result = _promtool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(_names(path, "record")) + len(_names(path, "alert"))
    assert count > 0
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_check_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The same check fails on a copy with a PromQL syntax error, so the test above can fail."""
    broken = tmp_path / RECORDING_RULES.name
    broken.write_text(RECORDING_RULES.read_text().replace("rate(grpc_server_handled_total[5m])", "rate(", 1))
    result = _promtool(promtool, "check", "rules", broken)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_alert_unit_tests_pass(promtool: str) -> None:
    """`promtool test rules examples/prometheus/hoptel-alerts.test.yml` succeeds."""
    result = _promtool(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_catch_wrong_thresholds(promtool: str, tmp_path: Path) -> None:
    """The unit tests fail on a copy whose fast threshold is ten times too high and whose slow one is zero.

    The first change makes the fast alerts miss what they must catch, the second makes the slow alerts fire in the
    quiet cases: the tests check both that an alert fires and that it stays silent.
    """
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    alerts = copy / ALERTS.name
    text = alerts.read_text()
    assert text.count("> (14.4 * 0.001)") == 4
    assert text.count("> (6 * 0.001)") == 4
    alerts.write_text(text.replace("> (14.4 * 0.001)", "> (144 * 0.001)").replace("> (6 * 0.001)", "> 0"))
    result = _promtool(promtool, "test", "rules", copy / RULE_TESTS.name)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"name: grpc fast burn,\s+alertname: HoptelGrpcErrorBudgetBurnFast", output), output
    assert re.search(r"name: grpc quiet,\s+alertname: HoptelGrpcErrorBudgetBurnSlow", output), output


def test_every_alert_has_a_unit_test_and_burn_rates_a_quiet_case() -> None:
    """Each alert is checked firing by the unit tests; each burn-rate alert is also checked staying quiet."""
    tests = RULE_TESTS.read_text()
    alerts = set(_names(ALERTS, "alert"))
    assert alerts >= BURN_RATE_ALERTS
    tested = re.findall(r"- alertname: (\S+)\n\s+eval_time: \S+\n\s+exp_alerts:\n\s+- exp_labels:", tests)
    assert alerts - set(tested) == set()
    quiet = re.findall(r"- alertname: (\S+)\n\s+eval_time: \S+\n\s+exp_alerts: \[\]", tests)
    assert {"HoptelGrpcErrorBudgetBurnFast", "HoptelGrpcErrorBudgetBurnSlow"} <= set(quiet)


def test_every_alert_has_a_severity_summary_and_description() -> None:
    """Each alert routes by a ``severity`` label and explains itself in ``summary`` and ``description``."""
    blocks = re.split(r"^\s+- alert: ", ALERTS.read_text(), flags=re.MULTILINE)[1:]
    assert len(blocks) == len(_names(ALERTS, "alert"))
    for block in blocks:
        name = block.split("\n", 1)[0]
        assert re.search(r"^\s+severity: (page|ticket|warning)$", block, re.MULTILINE), name
        assert re.search(r"^\s+summary: ", block, re.MULTILINE), name
        assert re.search(r"^\s+description: ", block, re.MULTILINE), name
