"""Whatever a document holds, validation answers with problems, never a traceback."""

from __future__ import annotations

import copy
import functools
import json
import operator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamodel.errors import InvalidDocument, Problem
from metamodel.validate import parse_document, validate_document

# A small document that touches every part of the format, so mutations reach every check.
SEED = json.loads((Path(__file__).parent / "valid" / "compact.json").read_text(encoding="utf-8"))
REMOVE = "(remove)"  # a mutation that deletes the key or the list item


def children(node) -> list:
    if isinstance(node, dict):
        return list(node.items())
    return list(enumerate(node)) if isinstance(node, list) else []


def positions(node, at: tuple = ()):
    for key, child in children(node):
        yield (*at, key)
        yield from positions(child, (*at, key))


def words(node) -> set[str]:
    found = {node} if isinstance(node, str) else set()
    for key, child in children(node):
        found |= words(child) | ({key} if isinstance(key, str) else set())
    return found


# Names from the document itself make mutations that confuse one thing for another.
NAMES = sorted(words(SEED) | {"$owner", "x.y", "crm.deal"})
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(NAMES)


def containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)


VALUES = st.recursive(SCALARS, containers, max_leaves=6) | st.just(REMOVE)
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(list(positions(SEED))), VALUES), min_size=1, max_size=4
)


def mutated(document: dict, mutations: list) -> dict:
    changed = copy.deepcopy(document)
    for at, value in mutations:
        try:
            parent = functools.reduce(operator.getitem, at[:-1], changed)
            if value == REMOVE:
                del parent[at[-1]]
            else:
                parent[at[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation changed the way there
    return changed


def test_the_seed_is_valid():
    assert validate_document(SEED) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_a_mutated_document_gives_problems_not_a_traceback(mutations):
    problems = validate_document(mutated(SEED, mutations), external={"crm": SEED}.get)
    assert all(isinstance(problem, Problem) for problem in problems)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_gives_one_located_problem(text):
    try:
        parse_document(text)
    except InvalidDocument as error:
        assert len(error.problems) == 1
        assert error.problems[0].path == ""
