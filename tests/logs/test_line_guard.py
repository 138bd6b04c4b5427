"""LineGuard: the application's text reaches the stream in whole lines; the log writer's lines go between them."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from hoptel.logs.line_guard import LineGuard


class RecordingStream(io.StringIO):
    """A StringIO that remembers each write() call separately."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


@pytest.fixture
def stream() -> RecordingStream:
    """The real stream under the guard."""
    return RecordingStream()


@pytest.fixture
def guard(stream: RecordingStream) -> Iterator[LineGuard]:
    """A guard over ``stream`` that waits briefly for open lines."""
    guard = LineGuard(stream, open_line_wait_s=0.05)
    yield guard
    guard.uninstall()


def test_print_with_several_arguments_reaches_the_stream_in_one_write(
    guard: LineGuard, stream: RecordingStream
) -> None:
    """print() makes one write() per part; the stream sees the whole line in a single call."""
    print("SPAN", 1, 2, file=guard)
    assert stream.calls == ["SPAN 1 2\n"]


def test_log_lines_written_mid_print_come_after_the_whole_line(guard: LineGuard, stream: RecordingStream) -> None:
    """The writer's lines, written between two parts of an app line, do not land inside it."""
    guard.write("SPAN")
    guard.write_lines('{"message":"log"}\n')
    guard.write(" a b\n")
    assert stream.getvalue() == '{"message":"log"}\nSPAN a b\n'


def test_partial_lines_are_kept_per_thread(guard: LineGuard, stream: RecordingStream) -> None:
    """Two threads building lines part by part, interleaved, each get their own whole line."""
    step = [threading.Event() for _ in range(4)]

    def first() -> None:
        guard.write("first-a ")
        step[0].set()
        step[1].wait(10)
        guard.write("first-b\n")
        step[2].set()

    def second() -> None:
        step[0].wait(10)
        guard.write("second-a ")
        step[1].set()
        step[2].wait(10)
        guard.write("second-b\n")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert stream.getvalue().splitlines() == ["first-a first-b", "second-a second-b"]


def test_text_after_the_last_newline_waits_for_its_own_newline(guard: LineGuard, stream: RecordingStream) -> None:
    """A write holding one and a half lines passes the whole one on and keeps the half."""
    guard.write("one\ntw")
    assert stream.getvalue() == "one\n"
    guard.write("o\n")
    assert stream.calls == ["one\n", "two\n"]


def test_flush_writes_the_partial_line_and_the_writer_waits_for_its_end(
    stream: RecordingStream,
) -> None:
    """After print(end="", flush=True) the writer waits for the app's newline, then writes its lines after it."""
    guard = LineGuard(stream, open_line_wait_s=30.0)
    print("progress", end="", file=guard, flush=True)
    assert stream.getvalue() == "progress"
    writer = threading.Thread(target=guard.write_lines, args=("LOG\n",))
    writer.start()
    time.sleep(0.2)  # the writer is now waiting (or about to) for the open line
    assert stream.getvalue() == "progress"
    guard.write(" done\n")
    writer.join(30)
    assert not writer.is_alive()
    assert stream.getvalue() == "progress done\nLOG\n"


def test_a_line_left_open_too_long_is_ended_before_the_log_lines(guard: LineGuard, stream: RecordingStream) -> None:
    """When the app never finishes a flushed line, the writer starts its lines on a new line after the wait."""
    guard.write("Password: ")
    guard.flush()
    guard.write_lines("LOG\n")
    guard.write("rest\n")
    assert stream.getvalue() == "Password: \nLOG\nrest\n"


def test_a_very_long_partial_line_is_written_as_it_is(stream: RecordingStream) -> None:
    """A partial line longer than max_partial is not kept aside without bound."""
    guard = LineGuard(stream, max_partial=10, open_line_wait_s=0.01)
    guard.write("x" * 6)
    assert stream.getvalue() == ""
    guard.write("y" * 6)
    assert stream.getvalue() == "x" * 6 + "y" * 6


def test_install_and_uninstall_swap_sys_stdout_and_write_the_partial_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """install() puts the guard in sys.stdout; uninstall() writes what is pending and puts the real stream back."""
    real = RecordingStream()
    monkeypatch.setattr(sys, "stdout", real)
    guard = LineGuard.install()
    assert guard is not None
    assert sys.stdout is guard
    assert LineGuard.install() is None  # never a guard over a guard
    print("pending", end="")
    guard.uninstall()
    assert sys.stdout is real
    assert real.getvalue() == "pending"
    guard.write("late")  # a reference kept meanwhile (a StreamHandler) now writes straight through
    assert real.calls[-1] == "late"


def test_uninstall_leaves_a_stdout_replaced_since_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """If something replaced sys.stdout after install(), uninstall() does not undo that."""
    monkeypatch.setattr(sys, "stdout", RecordingStream())
    guard = LineGuard.install()
    assert guard is not None
    other = io.StringIO()
    sys.stdout = other
    guard.uninstall()
    assert sys.stdout is other


def test_the_real_streams_attributes_show_through(guard: LineGuard, stream: RecordingStream) -> None:
    """isatty(), encoding, readable() and the like are the real stream's."""
    assert guard.isatty() is False
    assert guard.encoding == stream.encoding
    assert guard.writable() is True
    assert guard.closed is False


def test_bytes_are_refused_like_a_text_stream_does(guard: LineGuard) -> None:
    """write(b"...") raises TypeError, as sys.stdout would."""
    with pytest.raises(TypeError, match="must be str, not bytes"):
        guard.write(b"x\n")  # type: ignore[arg-type]  # the wrong type is the point


def test_a_closed_stream_fails_the_app_write_at_its_line(guard: LineGuard, stream: RecordingStream) -> None:
    """Writing a line to a closed stream raises ValueError to the app, as a closed sys.stdout would."""
    stream.close()
    with pytest.raises(ValueError, match="closed file"):
        print("x", file=guard)


def test_writelines_keeps_lines_whole(guard: LineGuard, stream: RecordingStream) -> None:
    """writelines() of parts that only make a line together reaches the stream as that line."""
    guard.writelines(["a", "b", "c\n"])
    assert stream.calls == ["abc\n"]


def test_write_returns_the_length_it_was_given(guard: LineGuard) -> None:
    """write() returns len(text) whether the text is kept aside, written, or both."""
    assert [guard.write(text) for text in ("ab", "c\nde", "\n")] == [2, 4, 1]


@pytest.fixture
def text_over_bytes() -> io.TextIOWrapper:
    """A text stream over a BytesIO, like sys.stdout over its buffer."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=False)


def _bytes_written(stream: io.TextIOWrapper) -> bytes:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue()


def test_binary_lines_through_buffer_are_kept_whole(text_over_bytes: io.TextIOWrapper) -> None:
    """sys.stdout.buffer.write() in parts: the writer's lines land before the byte line, not inside it."""
    guard = LineGuard(text_over_bytes, open_line_wait_s=0.05)
    guard.buffer.write(b"BIN ")
    guard.write_lines("LOG\n")
    guard.buffer.write(bytearray(b"a b\n"))
    assert _bytes_written(text_over_bytes) == b"LOG\nBIN a b\n"


def test_a_flushed_binary_partial_line_is_ended_before_the_log_lines(text_over_bytes: io.TextIOWrapper) -> None:
    """A byte line left open by buffer.flush() is treated like a text one: the writer starts on a new line."""
    guard = LineGuard(text_over_bytes, open_line_wait_s=0.05)
    guard.buffer.write(b"prompt: ")
    guard.buffer.flush()
    guard.write_lines("LOG\n")
    assert _bytes_written(text_over_bytes) == b"prompt: \nLOG\n"


def test_the_guarded_buffer_passes_other_attributes_and_retires(text_over_bytes: io.TextIOWrapper) -> None:
    """The guarded buffer shows the real one's attributes; after uninstall() its writes go straight through."""
    guard = LineGuard(text_over_bytes)
    buffer = guard.buffer
    assert buffer.writable() is True
    assert buffer is guard.buffer  # one guard per real buffer
    buffer.write(b"pending")
    guard.uninstall()
    buffer.write(b" then direct")
    assert _bytes_written(text_over_bytes) == b"pending then direct"


def test_a_single_write_longer_than_max_partial_is_written_at_once(stream: RecordingStream) -> None:
    """One partial write already over max_partial goes to the stream right away."""
    guard = LineGuard(stream, max_partial=4, open_line_wait_s=0.01)
    guard.write("x" * 10)
    assert stream.calls == ["x" * 10]


def test_a_write_from_inside_a_write_does_not_deadlock() -> None:
    """A signal handler that prints while its thread is inside the real stream's write() goes through."""

    class Interrupted(RecordingStream):
        guard: LineGuard | None = None

        def write(self, text: str) -> int:
            guard, self.guard = self.guard, None
            if guard is not None:  # as if a signal handler ran here and printed
                print("HANDLER", file=guard)
            return super().write(text)

    stream = Interrupted()
    guard = LineGuard(stream)
    stream.guard = guard
    done = threading.Event()
    thread = threading.Thread(target=lambda: (print("MAIN", file=guard), done.set()), daemon=True)
    thread.start()
    assert done.wait(30)
    assert stream.calls == ["HANDLER\n", "MAIN\n"]
