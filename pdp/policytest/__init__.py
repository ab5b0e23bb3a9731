"""Policy tests: YAML files of cases a user writes next to a snapshot (an
agent's request, its spend and clock -> the decision, violations, masked
text or Authorize answer expected), read strictly, expanded from matrices,
and decided by the engine. ``pdp test`` runs them; docs/policy-tests.md
describes the format.

Exception tree::

    TestFileError   a test file is malformed; the message names the file and the place
"""

from ._format import (
    AuthorizeExpect,
    EnforceExpect,
    PolicyTest,
    TestFile,
    TestFileError,
    load_test_file,
)
from ._junit import FileReport, junit_xml
from ._run import CaseResult, run_cases
from ._usage import MemoryUsage, SpendEntry
from ._yaml import StrictLoader, load_strict

__all__ = [
    "AuthorizeExpect",
    "CaseResult",
    "EnforceExpect",
    "FileReport",
    "MemoryUsage",
    "PolicyTest",
    "SpendEntry",
    "StrictLoader",
    "TestFile",
    "TestFileError",
    "junit_xml",
    "load_strict",
    "load_test_file",
    "run_cases",
]
