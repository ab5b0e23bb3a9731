"""The C part of the build (everything else is in pyproject.toml): the
learned injection tier's scorer. Optional: where it cannot be compiled (no C
compiler or no Python headers), pdp installs without it and scores in Python
(``pdp/engine/_injection_model.py``), with the same results, more slowly."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pdp.engine._injection_native",
            sources=["pdp/engine/_native/injection_scorer.c"],
            optional=True,
        )
    ]
)
