"""The workflow engine: state machines and approvals over the record service.

Use :class:`Workflows` (``engine.py``); the other modules each hold one concept.
No Flask here: the engine is usable from scripts, workers and tests alike.
"""

from .engine import Workflows

__all__ = ["Workflows"]
