"""The policy types: every module of ``_checks`` defines one, as
``POLICY_TYPE``, named like the module. Everything that lists or reads
policy types (the snapshot reader, the control plane, the documentation's
table of types) derives from :data:`REGISTRY`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from . import _checks
from ._fields import Problems, Reader
from ._model import PolicySpec
from ._policy import (
    COMMON_RULE_FIELDS,
    DEFAULT_APPROVAL_TIMEOUT_S,
    ON_STATE_ERROR,
    Check,
    PolicyType,
    read_common_rule,
)

__all__ = ["POLICY_TYPES", "REGISTRY", "CompiledRule", "compile_rule"]


def _discover() -> dict[str, PolicyType]:
    found: dict[str, PolicyType] = {}
    for module_info in sorted(pkgutil.iter_modules(_checks.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_checks.__name__}.{module_info.name}")
        entry = getattr(module, "POLICY_TYPE", None)
        if not isinstance(entry, PolicyType) or entry.name != module_info.name:
            raise ImportError(
                f"{module.__name__} must define POLICY_TYPE, a PolicyType named "
                f"{module_info.name!r}"
            )
        found[entry.name] = entry
    return found


REGISTRY: Mapping[str, PolicyType] = MappingProxyType(_discover())
"""Every policy type by name, in name order."""

POLICY_TYPES: tuple[str, ...] = tuple(REGISTRY)


class CompiledRule(NamedTuple):
    """A policy's check; whether it lets calls through (``open``) or fires
    (closed) when the usage it reads cannot be read; and how long a reviewer
    has to decide a call it holds (every type may say, see
    :data:`COMMON_RULE_FIELDS`)."""

    check: Check | None
    open_on_state_error: bool
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S


def compile_rule(spec: PolicySpec, problems: Problems) -> CompiledRule:
    """The check for ``spec`` (whose type is registered); problems in its
    ruleDefinition go to ``problems``."""
    policy_type = REGISTRY[spec.policy_type]
    fields = (*policy_type.rule_fields, *COMMON_RULE_FIELDS)
    reader = Reader(spec.rule, f"{spec.path}.ruleDefinition", problems, fields)
    check = policy_type.build(reader, spec)
    state_error = "closed"
    if policy_type.reads_usage:
        state_error = reader.choice(ON_STATE_ERROR, ("closed", "open")) or "closed"
    common = read_common_rule(reader)
    return CompiledRule(check, state_error == "open", common.approval_timeout_s)
