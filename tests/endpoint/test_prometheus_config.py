"""examples/prometheus.yml: valid for promtool, and scraping the four demo services' metrics ports."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "prometheus.yml"
RULES = CONFIG.with_name("prometheus")
DEMO_SERVICES = {"gateway": 9464, "orders": 9465, "inventory": 9466, "pricing": 9467}
PROMTOOL_TIMEOUT_S = 60.0


def _check(promtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def test_promtool_accepts_the_example_config(promtool: str) -> None:
    """`promtool check config examples/prometheus.yml` succeeds."""
    result = _check(promtool, CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_check_is_not_vacuous(promtool: str, tmp_path: Path) -> None:
    """The same check rejects a copy with a broken scrape interval, so the test above can fail."""
    shutil.copytree(RULES, tmp_path / RULES.name)  # the rule files it loads, so only the interval is wrong
    intact = tmp_path / "intact.yml"
    intact.write_text(CONFIG.read_text())
    assert _check(promtool, intact).returncode == 0
    broken = tmp_path / "prometheus.yml"
    broken.write_text(CONFIG.read_text().replace("scrape_interval: 1s", "scrape_interval: soon", 1))
    result = _check(promtool, broken)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_example_config_loads_the_shipped_rules() -> None:
    """The config loads the recording rules and the alerts shipped in examples/prometheus/."""
    files = re.findall(r"^rule_files:\n((?:\s+- .+\n)+)", CONFIG.read_text(), re.MULTILINE)
    assert files, "no rule_files"
    listed = [line.strip().removeprefix("- ") for line in files[0].splitlines()]
    assert listed == ["prometheus/hoptel-rules.yml", "prometheus/hoptel-alerts.yml"]
    assert all((CONFIG.parent / name).is_file() for name in listed)


def test_example_config_scrapes_each_demo_service() -> None:
    """Each demo service is a job whose one target is its hoptel metrics port on loopback, every second."""
    text = CONFIG.read_text()
    active = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    jobs = dict(re.findall(r'- job_name: (\S+)\s+static_configs:\s+- targets: \["127\.0\.0\.1:(\d+)"\]', active))
    assert {name: int(port) for name, port in jobs.items()} == DEMO_SERVICES
    assert re.search(r"^\s+scrape_interval: 1s\b", active, re.MULTILINE)


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_program_fails_under_ci_and_skips_elsewhere(
    require_program: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    """A missing promtool/prometheus fails the test when CI=true and skips it otherwise."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="not installed"):
        require_program("hoptel-no-such-program", "/nonexistent/hoptel-no-such-program")
