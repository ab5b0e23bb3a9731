"""A JSON snapshot is read an item of its top-level lists at a time: the
same document ``json.loads`` gives, and for each item whose text an earlier
document had, that earlier object."""

from __future__ import annotations

import json

import pytest
import yaml

from pdp.engine import SnapshotError, parse_document, parse_document_items
from pdp.engine._document import _Loader

SAME_AS_JSON = [
    '{"revision": 3, "agents": [{"id": "a"}, {"id": "b"}], "policies": []}',
    ' \n{ "a" : [ 1 , 2.5 , "x\\u00e9" , null , true , [ ] , { } ] , "b" : { "c" : [1] } }\n ',
    '{"duplicate": [1], "other": 2, "duplicate": [3]}',
    '{"nested": [[1, [2, [3]]], {"list": [{"k": "v"}]}]}',
    "{}",
    '{"empty": []}',
    '{"emoji": ["\\ud83d\\ude00", "caf\u00e9"]}',
]


@pytest.mark.parametrize("text", SAME_AS_JSON)
def test_a_json_document_reads_as_json_loads_reads_it(text: str) -> None:
    document, _ = parse_document_items(text)
    assert document == json.loads(text)
    assert list(document) == list(json.loads(text))  # key order too


@pytest.mark.parametrize(
    "text", ['{"a": [1, 2,]}', '{"a": [1], "b": 2} trailing', '{"a": [1 2]}', '{"a": [}']
)
def test_what_is_not_json_goes_to_the_yaml_reader(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    try:
        expected: object = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        expected = SnapshotError
    if expected is SnapshotError:
        with pytest.raises(SnapshotError, match="invalid YAML: line 1"):
            parse_document(text)
    else:
        assert parse_document(text) == expected


def test_unchanged_items_are_the_earlier_objects() -> None:
    first = {
        "revision": 1,
        "policies": [{"name": f"p{i}", "rule": {"n": i}} for i in range(5)],
    }
    old, items = parse_document_items(json.dumps(first))
    second = json.loads(json.dumps(first))
    second["revision"] = 2
    second["policies"][2]["rule"]["n"] = 99
    second["policies"].insert(0, {"name": "new"})
    new, _ = parse_document_items(json.dumps(second), items)
    assert new == second
    old_policies, new_policies = old["policies"], new["policies"]
    assert isinstance(old_policies, list) and isinstance(new_policies, list)
    assert new_policies[1] is old_policies[0]  # moved, same text
    assert new_policies[3] is not old_policies[2]  # changed
    assert new_policies[3] == {"name": "p2", "rule": {"n": 99}}
    assert sum(any(p is q for q in old_policies) for p in new_policies) == 4


def test_an_item_equal_in_value_but_not_in_text_is_read_again() -> None:
    # 1 == 1.0 == true in Python; the text tells them apart.
    _, items = parse_document_items('{"policies": [{"isActive": true}]}')
    new, _ = parse_document_items('{"policies": [{"isActive": 1}]}', items)
    policies = new["policies"]
    assert isinstance(policies, list) and policies[0]["isActive"] is not True
