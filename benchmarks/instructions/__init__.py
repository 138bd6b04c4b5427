"""Instructions per operation, counted with valgrind's callgrind: a measurement that resolves 1 %.

Run it from the repository root (valgrind installed)::

    python -m benchmarks.instructions                          # the table, writes benchmarks/results/instructions.md
    python -m benchmarks.instructions --gate                   # the hop gate against instruction_baseline.json
    python -m benchmarks.instructions --gate --update-baseline # record the baseline (commit it, saying why)

See ``benchmarks/README.md`` for the method and what the figures leave out.
"""

__all__: list[str] = []
