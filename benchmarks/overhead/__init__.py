"""The overhead benchmark: what instrumenting a hop costs, hoptel against the official stack, in one run.

Run it from the repository root::

    python -m benchmarks.overhead            # full run, writes benchmarks/results/latest.{md,json}
    python -m benchmarks.overhead --quick    # a smoke run: few operations, one repetition

See ``benchmarks/README.md`` for the method and the latest results.
"""

__all__: list[str] = []
