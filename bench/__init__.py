"""Benchmarks of issue 6 (scripts, not part of the test suite): ``python -m bench.run [--full]``; see README.md."""

__all__: list[str] = []
