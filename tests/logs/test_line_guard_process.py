"""Whole lines under stress: app threads print multi-part lines while hoptel logs heavily, stdout through a pipe."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]

PRINTERS = 4
LOGGERS = 2
LINES = 3000

STRESS_SCRIPT = f"""
    import logging, sys, threading
    from hoptel.logs import LogPipeline

    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    guarded = sys.argv[1] == "guarded"
    # Writing to sys.stdout as it is at each batch (stream=None) is what puts the guard in place; the control run
    # names the stream, which leaves sys.stdout as it was.
    pipeline = LogPipeline.start(
        directives="info", queue_size=1_000_000, stream=None if guarded else sys.stdout
    )
    log = logging.getLogger("stress")
    start = threading.Barrier({PRINTERS + LOGGERS})

    def printer(n):
        start.wait()
        for i in range({LINES}):
            if i % 3 == 0:
                print("APP", n, i, "x" * (i % 40), "end")
            elif i % 3 == 1 and n == 0:  # one thread writes bytes to sys.stdout.buffer, in parts
                for part in ("APP ", str(n), " ", str(i), " ", "x" * (i % 40), " end", "\\n"):
                    sys.stdout.buffer.write(part.encode())
            elif i % 3 == 1:
                for part in ("APP ", str(n), " ", str(i), " ", "x" * (i % 40), " end", "\\n"):
                    sys.stdout.write(part)
            else:
                print("APP", n, i, "x" * (i % 40), "end", flush=True)

    def logger(n):
        start.wait()
        for i in range({LINES}):
            log.info("LOG %d %d %s", n, i, "y" * (i % 40))

    threads = [threading.Thread(target=printer, args=(n,)) for n in range({PRINTERS})]
    threads += [threading.Thread(target=logger, args=(n,)) for n in range({LOGGERS})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pipeline.shutdown(timeout=60.0)
    sys.stderr.write(f"dropped={{pipeline.dropped}}\\n")
"""

APP_LINE = re.compile(r"^APP (\d+) (\d+) (x*) end$")
LOG_MESSAGE = re.compile(r"^LOG (\d+) (\d+) (y*)$")


def _classify(stdout: str) -> tuple[set[tuple[int, int]], set[tuple[int, int]], list[str]]:
    """App lines and log lines found whole, and every line that is neither."""
    app: set[tuple[int, int]] = set()
    logs: set[tuple[int, int]] = set()
    broken: list[str] = []
    for line in stdout.splitlines():
        match = APP_LINE.match(line)
        if match and len(match[3]) == int(match[2]) % 40:
            app.add((int(match[1]), int(match[2])))
            continue
        try:
            record = json.loads(line)
        except ValueError:
            broken.append(line)
            continue
        found = LOG_MESSAGE.match(record.get("message", "")) if isinstance(record, dict) else None
        if found and len(found[3]) == int(found[2]) % 40:
            logs.add((int(found[1]), int(found[2])))
        else:
            broken.append(line)
    return app, logs, broken


def test_every_line_is_a_whole_app_line_or_a_whole_json_line(run_script: ScriptRunner) -> None:
    """With the guard, no line is cut: every app line and every log record arrives whole, none is lost."""
    done = run_script(STRESS_SCRIPT, "guarded")
    app, logs, broken = _classify(done.stdout)
    assert broken == []
    assert app == {(n, i) for n in range(PRINTERS) for i in range(LINES)}
    assert "dropped=0" in done.stderr
    assert logs == {(n, i) for n in range(LOGGERS) for i in range(LINES)}


def test_without_the_guard_lines_are_cut(run_script: ScriptRunner) -> None:
    """Control: the same load on an unguarded stdout does produce cut lines, so the test above can fail."""
    done = run_script(STRESS_SCRIPT, "unguarded")
    _, _, broken = _classify(done.stdout)
    assert broken, "expected cut lines without the guard"
