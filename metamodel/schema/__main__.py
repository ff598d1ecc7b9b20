"""``python -m metamodel.schema``: rewrite the shipped schema from the registry."""

from . import write_schema

print(f"wrote {write_schema()}")
