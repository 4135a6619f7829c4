"""Reproducible benchmarks of the export path against the official ``cloudflare`` SDK.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks``). Not tests: nothing here runs
in ``make test``; ``make bench`` prints PASS/MISS per target and writes ``RESULTS.md`` and
``throughput_vs_latency.png`` next to this file.
"""
