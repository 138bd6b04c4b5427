"""OTEL_TRACES_SAMPLER_ARG is read, and validated, only by the samplers that use it (the ratio samplers)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

import hoptel
from hoptel.config import Config
from hoptel.telemetry import build_sampler

RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
OTHER_SAMPLERS = ("always_on", "always_off", "parentbased_always_on", "parentbased_always_off")


@pytest.mark.parametrize("sampler", OTHER_SAMPLERS)
@pytest.mark.parametrize("arg", ["lots", "1.5", "-1", "nan"])
def test_bad_arg_is_ignored_by_samplers_that_do_not_read_it(sampler: str, arg: str) -> None:
    """A left-over bad ARG does not fail setup() when the chosen sampler ignores it."""
    environ = {"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg, "OTEL_TRACES_EXPORTER": "none"}
    with hoptel.setup("svc", environ=environ, metrics_addr="off", signals=False) as tel:
        assert tel.config.sampler.name == sampler


def test_bad_arg_is_ignored_with_the_default_sampler() -> None:
    """Without OTEL_TRACES_SAMPLER (parentbased_always_on) the ARG is not read either."""
    config = Config.load({"OTEL_TRACES_SAMPLER_ARG": "lots"})
    assert config.sampler.name == "parentbased_always_on"


@pytest.mark.parametrize("sampler", RATIO_SAMPLERS)
@pytest.mark.parametrize("arg", ["lots", "1.5", "-0.1", "inf"])
def test_bad_arg_fails_the_ratio_samplers(sampler: str, arg: str) -> None:
    """A ratio sampler reads the ARG: a bad one is a ValueError naming the variable and the value."""
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG") as raised:
        Config.load({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg})
    assert arg in str(raised.value)


@pytest.mark.parametrize("sampler", RATIO_SAMPLERS)
def test_ratio_samplers_use_the_arg(sampler: str) -> None:
    """The ratio reaches the SDK sampler (default 1.0 when the ARG is absent)."""
    chosen = build_sampler(Config.load({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0.25"}).sampler)
    root = chosen._root if isinstance(chosen, ParentBased) else chosen  # private: the ParentBased root sampler
    assert isinstance(root, TraceIdRatioBased)
    assert root.rate == 0.25
    assert Config.load({"OTEL_TRACES_SAMPLER": sampler}).sampler.ratio == 1.0
