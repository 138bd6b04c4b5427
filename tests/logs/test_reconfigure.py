"""In-process pieces of the reaction to a logging reconfiguration: the watch, the handler's close(), server loggers."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from hoptel.logs.queue_handler import BoundedQueueHandler
from hoptel.logs.reconfigure_watch import ReconfigureWatch
from hoptel.logs.server_loggers import ServerLoggers


class Seen(logging.Handler):
    """Notes, for each record it gets, how many reactions had run by then."""

    def __init__(self, reactions: list[str]) -> None:
        super().__init__()
        self.reactions = reactions
        self.at_emit: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.at_emit.append(len(self.reactions))


@pytest.fixture
def private_logger() -> Iterator[logging.Logger]:
    """A logger no other test uses, that does not propagate; its handlers are removed afterwards."""
    logger = logging.getLogger("hoptel-tests.reconfigure")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


@pytest.fixture
def watch() -> Iterator[tuple[ReconfigureWatch, list[str]]]:
    """A started watch whose reaction appends to a list; stopped afterwards (the record factory is put back)."""
    factory = logging.getLogRecordFactory()
    reactions: list[str] = []
    watch = ReconfigureWatch(lambda: reactions.append("reacted"))
    watch.start()
    yield watch, reactions
    watch.stop()
    logging.setLogRecordFactory(factory)


def test_nothing_is_added_to_record_creation_until_a_mark(watch: tuple[ReconfigureWatch, list[str]]) -> None:
    """While nothing happened, the record factory is the one that was there: no per-record cost."""
    before = logging.getLogRecordFactory()
    logging.getLogger("hoptel-tests.quiet").warning("x")
    assert logging.getLogRecordFactory() is before
    assert watch[1] == []


def test_the_reaction_runs_before_the_next_record_is_handled(
    watch: tuple[ReconfigureWatch, list[str]], private_logger: logging.Logger
) -> None:
    """After mark(), the first record created runs the reaction first, once; the factory is then put back."""
    reconfigure_watch, reactions = watch
    seen = Seen(reactions)
    private_logger.addHandler(seen)
    before = logging.getLogRecordFactory()
    reconfigure_watch.mark()
    reconfigure_watch.mark()  # a burst of closes (dictConfig closes every handler) is one reconfiguration
    assert logging.getLogRecordFactory() is not before
    private_logger.info("first")
    private_logger.info("second")
    assert seen.at_emit == [1, 1]
    assert logging.getLogRecordFactory() is before
    assert reconfigure_watch.reconfigurations == 1


def test_a_factory_set_on_top_keeps_working(
    watch: tuple[ReconfigureWatch, list[str]], private_logger: logging.Logger
) -> None:
    """A factory the app chains on top of the armed watch's keeps working, and later marks still react."""
    reconfigure_watch, reactions = watch
    reconfigure_watch.mark()
    ours = logging.getLogRecordFactory()

    def tagging(*args: object, **kwargs: object) -> logging.LogRecord:
        record = ours(*args, **kwargs)
        record.tagged = True
        return record

    logging.setLogRecordFactory(tagging)
    seen = Seen(reactions)
    private_logger.addHandler(seen)
    private_logger.info("one")
    assert logging.getLogRecordFactory() is tagging
    reconfigure_watch.mark()
    private_logger.info("two")
    assert seen.at_emit == [1, 2]


def test_after_stop_marks_are_ignored(watch: tuple[ReconfigureWatch, list[str]]) -> None:
    """A stopped watch neither swaps the factory nor reacts."""
    reconfigure_watch, reactions = watch
    before = logging.getLogRecordFactory()
    reconfigure_watch.stop()
    reconfigure_watch.mark()
    logging.getLogger("hoptel-tests.quiet").warning("x")
    assert logging.getLogRecordFactory() is before
    assert reactions == []


def test_a_failing_reaction_never_fails_the_logging_call(
    private_logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    """An exception in the reaction is printed on stderr; the record is still created and handled."""
    factory = logging.getLogRecordFactory()

    def broken() -> None:
        raise RuntimeError("reaction failed")

    failing = ReconfigureWatch(broken)
    failing.start()
    seen = Seen([])
    private_logger.addHandler(seen)
    try:
        failing.mark()
        private_logger.info("still logged")
    finally:
        failing.stop()
        logging.setLogRecordFactory(factory)
    assert seen.at_emit == [0]
    assert "RuntimeError: reaction failed" in capfd.readouterr().err


def test_a_record_made_during_another_threads_reaction_does_not_wait(private_logger: logging.Logger) -> None:
    """A thread creating a record while another thread reacts goes on; the pending mark reacts on a later record."""
    factory = logging.getLogRecordFactory()
    entered, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(30)

    slow_watch = ReconfigureWatch(slow)
    slow_watch.start()
    first = threading.Thread(target=private_logger.info, args=("first",))
    second = threading.Thread(target=lambda: (private_logger.info("second"), done.set()))
    try:
        slow_watch.mark()
        first.start()
        assert entered.wait(30)
        slow_watch.mark()  # a new reconfiguration while the reaction runs
        second.start()
        assert done.wait(30)  # did not wait for the first thread's reaction
        assert slow_watch.reconfigurations == 1
        release.set()
        first.join(30)
        private_logger.info("third")
        assert slow_watch.reconfigurations == 2
    finally:
        release.set()
        slow_watch.stop()
        logging.setLogRecordFactory(factory)


def test_a_close_before_stop_calls_on_close_and_keeps_the_worker() -> None:
    """With on_close, close() from someone else (dictConfig) reports it and the handler keeps delivering."""
    delivered: list[str] = []
    closes: list[int] = []
    handler = BoundedQueueHandler(
        lambda batch: delivered.extend(str(entry[0].msg) for entry in batch), 100, on_close=lambda: closes.append(1)
    )
    handler.handle(logging.makeLogRecord({"msg": "before"}))
    handler.close()
    handler.handle(logging.makeLogRecord({"msg": "after"}))
    assert handler.stop(10.0)
    handler.close()  # the owner's close, after stop(): no report
    assert delivered == ["before", "after"]
    assert closes == [1]


def test_without_on_close_close_stops_the_worker() -> None:
    """A handler without on_close is ended by close() (after delivering what was queued)."""
    delivered: list[str] = []
    handler = BoundedQueueHandler(lambda batch: delivered.extend(str(entry[0].msg) for entry in batch), 100)
    handler.handle(logging.makeLogRecord({"msg": "queued"}))
    handler.close()
    assert delivered == ["queued"]
    assert not handler.worker.is_alive()


NAMES = ("hoptel-tests.server.error", "hoptel-tests.server.access")


@pytest.fixture
def server_loggers() -> Iterator[tuple[logging.Logger, logging.Logger]]:
    """Two loggers set up the way gunicorn's UvicornWorker leaves uvicorn's: shared handler list, no propagation.

    Their handlers are ``console`` (stderr) and ``elsewhere`` (a StringIO), in that order; pytest (9.1 and later) may
    add its own log-capture handlers to non-propagating loggers while a test runs, so tests look at these two only.
    """
    error, access = (logging.getLogger(name) for name in NAMES)
    error.handlers = [logging.StreamHandler(sys.stderr), logging.StreamHandler(io.StringIO())]
    access.handlers = error.handlers  # the same list object, as UvicornWorker does
    error.propagate = access.propagate = False
    yield error, access
    error.handlers = []
    access.handlers = []
    error.propagate = access.propagate = True


def _ours(logger: logging.Logger) -> list[logging.Handler]:
    """The logger's handlers other than pytest's own log-capture ones."""
    return [h for h in logger.handlers if type(h).__module__.split(".")[0] != "_pytest"]


def _console(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]


def test_server_loggers_are_adopted_and_restored(server_loggers: tuple[logging.Logger, logging.Logger]) -> None:
    """Console handlers move aside, other handlers stay, loggers propagate; restore() undoes exactly that."""
    error, access = server_loggers
    console, elsewhere = _ours(error)
    loggers = ServerLoggers(_console, NAMES)
    assert loggers.adopt() == list(NAMES)
    assert _ours(error) == [elsewhere]
    assert _ours(access) == [elsewhere]
    assert error.propagate
    assert access.propagate
    assert loggers.moved_handlers == {NAMES[0]: (console,)}
    assert loggers.adopt() == []  # already routed: nothing to do
    loggers.restore()
    assert _ours(error) == [elsewhere, console]
    assert access.handlers is error.handlers
    assert not error.propagate
    assert not access.propagate


def test_loggers_that_do_not_exist_are_not_created() -> None:
    """Adopting does not create the server loggers of a server that is not in the process."""
    name = "hoptel-tests.never-created"
    assert ServerLoggers(_console, (name,)).adopt() == []
    assert name not in logging.Logger.manager.loggerDict
