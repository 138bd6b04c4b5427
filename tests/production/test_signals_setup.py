"""When ``setup()`` installs hoptel's signal handler, and when it gives the default back: checked in fresh processes.

Each scenario runs in a new interpreter (the dispositions are process-wide state), which reports what it observed
as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import hoptel

PRELUDE = """
import json, signal, threading
import hoptel
from hoptel.shutdown_signals import installed_signals

signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts, unless SIGINT was ignored
seen = {}

def ours():
    return [s.name for s in installed_signals()]

def make(**settings):
    return hoptel.setup("signals-setup", traces_exporter="none", metrics_addr="off", **settings)
"""


def _observe(body: str, **env: str) -> dict[str, Any]:
    """Run the prelude and ``body`` in a fresh interpreter; returns its ``seen`` dict."""
    script = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(seen))\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    result = subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    observed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return observed


def test_several_setups_share_one_handler_until_the_last_shutdown() -> None:
    """Two setup() calls install the handler once; it stays until the last Telemetry shuts down, then SIG_DFL."""
    seen = _observe(
        """
        first = make()
        handler = signal.getsignal(signal.SIGTERM)
        second = make()
        seen["after_two"] = ours()
        seen["same_handler"] = signal.getsignal(signal.SIGTERM) is handler
        seen["sigint_is_pythons"] = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        first.shutdown()
        seen["after_first_shutdown"] = ours()
        second.shutdown()
        seen["after_last_shutdown"] = ours()
        seen["default_back"] = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        """
    )
    assert seen == {
        "after_two": ["SIGTERM"],
        "same_handler": True,
        "sigint_is_pythons": True,
        "after_first_shutdown": ["SIGTERM"],
        "after_last_shutdown": [],
        "default_back": True,
    }


def test_a_handler_installed_before_or_after_setup_is_left_alone() -> None:
    """The app's handler set before setup() is kept; one set after it is not touched by shutdown()."""
    seen = _observe(
        """
        def app_handler(signum, frame):
            pass

        signal.signal(signal.SIGTERM, app_handler)
        tel = make()
        seen["before"] = signal.getsignal(signal.SIGTERM) is app_handler
        tel.shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        tel = make()
        signal.signal(signal.SIGTERM, app_handler)
        tel.shutdown()
        seen["after"] = signal.getsignal(signal.SIGTERM) is app_handler
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        tel = make()
        seen["ignored_kept"] = signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        tel.shutdown()
        """
    )
    assert seen == {"before": True, "after": True, "ignored_kept": True}


def test_a_default_sigint_is_handled_too() -> None:
    """SIGINT set back to SIG_DFL gets hoptel's handler as SIGTERM does; shutdown() gives both defaults back."""
    seen = _observe(
        """
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        tel = make()
        seen["ours"] = ours()
        tel.shutdown()
        seen["back"] = [signal.getsignal(s) == signal.SIG_DFL for s in (signal.SIGTERM, signal.SIGINT)]
        """
    )
    assert seen == {"ours": ["SIGTERM", "SIGINT"], "back": [True, True]}


def test_setup_off_the_main_thread_installs_nothing() -> None:
    """Only the main thread may set handlers: setup() in another thread leaves the dispositions alone."""
    seen = _observe(
        """
        made = []
        worker = threading.Thread(target=lambda: made.append(make()))
        worker.start()
        worker.join()
        seen["ours"] = ours()
        made[0].shutdown()
        """
    )
    assert seen == {"ours": []}


@pytest.mark.parametrize(
    ("env", "settings"),
    [({"HOPTEL_SIGNALS": "off"}, ""), ({}, "signals=False"), ({"HOPTEL_SIGNALS": "on"}, "signals='false'")],
    ids=["env", "keyword", "keyword-wins"],
)
def test_opting_out(env: dict[str, str], settings: str) -> None:
    """HOPTEL_SIGNALS=off, or setup(signals=False) (which wins over the variable), installs no handler."""
    seen = _observe(f"make({settings})\nseen['ours'] = ours()\n", **env)
    assert seen == {"ours": []}


def test_disabled_sdk_installs_nothing() -> None:
    """OTEL_SDK_DISABLED=true: there is nothing to flush, so no handler."""
    seen = _observe("make()\nseen['ours'] = ours()\n", OTEL_SDK_DISABLED="true")
    assert seen == {"ours": []}


def test_a_bad_value_names_the_variable() -> None:
    """A value HOPTEL_SIGNALS does not take is a ValueError naming the variable and the value."""
    with pytest.raises(ValueError, match=r"HOPTEL_SIGNALS='sometimes'"):
        hoptel.setup("signals-bad", environ={"HOPTEL_SIGNALS": "sometimes"}, metrics_addr="off")
