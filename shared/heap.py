"""A long-lived process's heap: what it loads at start is kept out of the collector's way.

A gateway or worker process holds some 200,000 objects once it has imported its code and
built its app (SQLAlchemy's mappers, marshmallow's schemas, the OpenAPI document, Celery's
tasks), and they live as long as the process. Python's full collection walks every one of them:
60 to 115 ms on these cores, paid by whichever request or task held the interpreter when it
came (one payment-run authorisation in three, in the benchmark). ``gc.freeze()`` moves them to
a generation the collector never walks; what is allocated afterwards is collected as usual.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then keep every object alive now out of later collections; how many."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%d objects loaded at start kept out of the garbage collector's walks", frozen)
    return frozen
