"""A second database, for what goes from one installation to another."""

from __future__ import annotations

import pytest

from metamodel.db import make_engine

from .second_db import second_db_url


@pytest.fixture
def other_engine(db_kind, tmp_path):
    """An engine on a second clean database of the kind under test."""
    with second_db_url(db_kind, tmp_path) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()
