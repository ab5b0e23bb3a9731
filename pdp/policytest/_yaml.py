"""YAML without silent key overwrites, for files people write by hand."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["StrictLoader", "load_strict"]


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (keys merged in
    with ``<<`` may still be overridden: that is what merging is for)."""


def _unique_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_strict(text: str) -> Any:
    """The YAML document in ``text``; raises yaml.YAMLError on a syntax error
    or a duplicated key."""
    return yaml.load(text, Loader=StrictLoader)
