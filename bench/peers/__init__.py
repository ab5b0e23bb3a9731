"""pdp next to OPA and Cerbos on the same machine: ``bench/peers/run.py``."""
