"""Overhead benchmark: our telemetry beside the bare app, its peers, and in the memo service.

`python -m bench` runs everything and writes docs/performance.md, docs/performance.png and
bench/results/latest.json; `python -m bench --smoke` checks the harness end to end in under a
minute and writes only under bench/results/.
"""
