"""The demo site with ``gc.freeze()`` after start-up: the objects Django and the app created while
loading move to the permanent generation, so full (gen2) collections under load scan only what
requests created. Measured as ``ours-daphne-gcfreeze`` next to ``ours-daphne``.
"""

from __future__ import annotations

import gc

from demo_project.asgi import application

gc.collect()
gc.freeze()

__all__ = ["application"]
