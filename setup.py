"""The C part of the build (everything else is in pyproject.toml): the
learned injection tier's scorer and the de-obfuscation readings' span
search. Optional: where they cannot be compiled (no C compiler or no Python
headers), pdp installs without them and does the same in Python
(``pdp/engine/_injection_model.py``, ``pdp/engine/_deobfuscate_spans.py``),
with the same results, more slowly."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pdp.engine._injection_native",
            sources=["pdp/engine/_native/injection_scorer.c"],
            optional=True,
        ),
        Extension(
            "pdp.engine._deobfuscate_native",
            sources=["pdp/engine/_native/deobfuscate_spans.c"],
            optional=True,
        ),
    ]
)
