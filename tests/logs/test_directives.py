"""HOPTEL_LOG directives: parsing, errors that name the bad part, and applying them as logger levels."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hoptel.config import DEFAULT_LOG_DIRECTIVES
from hoptel.logs import parse_directives
from hoptel.logs.directives import LEVELS, OFF, Directives, LoggerLevels


@pytest.fixture
def manager() -> logging.Manager:
    """A private logger tree, so the tests never touch the process's real loggers."""
    root = logging.RootLogger(logging.WARNING)
    tree = logging.Manager(root)
    return tree


def test_default_directives_keep_framework_loggers_at_warning() -> None:
    """The default HOPTEL_LOG keeps grpc, httpx, httpcore, urllib3, opentelemetry and asyncio at warning."""
    directives = parse_directives(DEFAULT_LOG_DIRECTIVES)
    assert directives.default == logging.INFO
    for name in ("grpc", "httpx", "httpcore", "urllib3", "opentelemetry", "asyncio"):
        assert directives.level_for(name) == logging.WARNING
        assert directives.level_for(f"{name}.child.grandchild") == logging.WARNING
    assert directives.level_for("orders.api") == logging.INFO


def test_level_names_are_case_insensitive_and_warn_is_warning() -> None:
    """Level names ignore case and surrounding spaces; warn means warning; off is above critical."""
    directives = parse_directives(" DEBUG , grpc = Warn , noisy=off ")
    assert directives == Directives(logging.DEBUG, (("grpc", logging.WARNING), ("noisy", OFF)))
    assert OFF > logging.CRITICAL


def test_most_specific_logger_wins() -> None:
    """A directive for a child logger overrides its parent's for that subtree only."""
    directives = parse_directives("info,grpc=warning,grpc._channel=debug")
    assert directives.level_for("grpc._channel.x") == logging.DEBUG
    assert directives.level_for("grpc.aio") == logging.WARNING
    assert directives.level_for("grpcx") == logging.INFO  # a prefix that is not a dotted parent


def test_later_directive_wins_and_empty_items_are_ignored() -> None:
    """A repeated logger or bare level keeps its last value; stray commas are ignored."""
    directives = parse_directives("info,,grpc=debug,error,grpc=warning,")
    assert directives.default == logging.ERROR
    assert directives.loggers == (("grpc", logging.WARNING),)


def test_without_a_bare_level_the_root_stays_at_python_default() -> None:
    """Only logger directives leave the root at WARNING, Python's default."""
    assert parse_directives("orders=debug").default == logging.WARNING


@pytest.mark.parametrize(
    ("text", "part", "why"),
    [
        ("info,x=y", "x=y", "unknown level 'y'"),
        ("info,grpc", "grpc", "expected LEVEL or logger=LEVEL"),
        ("verbose", "verbose", "expected LEVEL or logger=LEVEL"),
        ("info,=debug", "=debug", "logger name before '=' is missing"),
        ("info,a b=debug", "a b=debug", "'a b' is not a logger name"),
        ("info,.grpc=debug", ".grpc=debug", "is not a logger name"),
        ("info,grpc=debug=info", "grpc=debug=info", "more than one '='"),
        ("info,grpc=", "grpc=", "unknown level ''"),
    ],
)
def test_bad_directive_raises_naming_the_variable_and_part(text: str, part: str, why: str) -> None:
    """A malformed directive is a ValueError naming the variable, the whole value and the bad part."""
    with pytest.raises(ValueError, match="bad directive") as raised:
        parse_directives(text)
    message = str(raised.value)
    assert message.startswith(f"HOPTEL_LOG={text!r}: bad directive {part!r}")
    assert why in message


def test_error_names_the_given_variable() -> None:
    """The variable named in the error is the one passed in."""
    with pytest.raises(ValueError, match=r"^MY_LOG='loud': bad directive 'loud'"):
        parse_directives("loud", variable="MY_LOG")


@pytest.mark.parametrize("text", ["", " ", ",,"])
def test_empty_directives_raise(text: str) -> None:
    """A value without any directive is an error rather than a silent default."""
    with pytest.raises(ValueError, match="no directives"):
        parse_directives(text)


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}", fullmatch=True)
_levels = st.sampled_from(sorted(LEVELS))


@given(default=_levels, loggers=st.lists(st.tuples(_names, _levels), max_size=5))
def test_canonical_text_parses_back_to_the_same_directives(default: str, loggers: list[tuple[str, str]]) -> None:
    """str(directives) is a directive list that parses to equal directives."""
    text = ",".join([default, *(f"{name}={level}" for name, level in loggers)])
    directives = parse_directives(text)
    assert parse_directives(str(directives)) == directives


def test_apply_sets_root_and_named_logger_levels(manager: logging.Manager) -> None:
    """Applying sets the root to the default and each named logger to its level; children inherit."""
    levels = LoggerLevels(manager)
    levels.apply(parse_directives("info,grpc=warning"))
    assert manager.root.level == logging.INFO
    assert manager.getLogger("grpc").level == logging.WARNING
    child = manager.getLogger("grpc._channel")
    assert child.getEffectiveLevel() == logging.WARNING
    assert not child.isEnabledFor(logging.INFO)
    assert child.isEnabledFor(logging.WARNING)


def test_apply_covers_children_that_had_their_own_level(manager: logging.Manager) -> None:
    """A descendant with an explicit level is reset to inherit the directive, and restored afterwards."""
    library_child = manager.getLogger("uvicorn.access")
    library_child.setLevel(logging.INFO)
    own = manager.getLogger("uvicorn.error")
    own.setLevel(logging.INFO)
    levels = LoggerLevels(manager)
    levels.apply(parse_directives("info,uvicorn=warning,uvicorn.error=debug"))
    assert library_child.level == logging.NOTSET
    assert not library_child.isEnabledFor(logging.INFO)
    assert own.level == logging.DEBUG
    levels.restore()
    assert library_child.level == logging.INFO
    assert own.level == logging.INFO


def test_reapply_moves_to_new_directives_and_restore_undoes_all(manager: logging.Manager) -> None:
    """A second apply drops levels the new directives no longer name; restore brings back the originals."""
    manager.getLogger("httpx").setLevel(logging.ERROR)
    levels = LoggerLevels(manager)
    levels.apply(parse_directives("info,httpx=warning,grpc=warning"))
    levels.apply(parse_directives("debug,grpc=info"))
    assert manager.root.level == logging.DEBUG
    assert manager.getLogger("grpc").level == logging.INFO
    assert manager.getLogger("httpx").level == logging.ERROR  # back to what the application had
    levels.restore()
    assert manager.root.level == logging.WARNING
    assert manager.getLogger("grpc").level == logging.NOTSET


def test_a_level_set_by_others_in_between_is_the_one_restored(manager: logging.Manager) -> None:
    """A level changed after apply() (a later dictConfig) is overridden by the next apply(), put back by restore()."""
    levels = LoggerLevels(manager)
    levels.apply(parse_directives("info,uvicorn.access=warning"))
    manager.getLogger("uvicorn.access").setLevel(logging.INFO)  # what uvicorn's dictConfig does
    levels.apply(parse_directives("info,uvicorn.access=warning"))
    assert manager.getLogger("uvicorn.access").level == logging.WARNING
    levels.restore()
    assert manager.getLogger("uvicorn.access").level == logging.INFO


def test_off_silences_even_critical(manager: logging.Manager) -> None:
    """Off makes a logger skip critical records too."""
    LoggerLevels(manager).apply(parse_directives("info,noisy=off"))
    assert not manager.getLogger("noisy.sub").isEnabledFor(logging.CRITICAL)
