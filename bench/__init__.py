"""Benchmarks and detector quality reports. Each module runs as a script
(``.venv/bin/python bench/NAME.py``) and imports as ``bench.NAME`` from tests;
what they share is in :mod:`bench._common`."""
