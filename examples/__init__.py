"""The hoptel multi-service demo: ``python -m examples.demo`` (see examples/README.md)."""
