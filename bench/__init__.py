"""Benchmarks: scripts that measure this machine and write the figures into the docs, not timed tests.

Entry points (run from the repository root): ``python -m bench.performance`` (``make bench``),
``python -m bench.quality`` (``make eval``) and ``python -m bench.load`` (``make load``). Each writes only the
generated blocks of its document (:mod:`bench.generated`); the prose around them is written by hand.
"""
