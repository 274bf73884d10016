"""One reusable instance per schema class, for the per-message paths.

Building a marshmallow schema deep-copies its declared fields (about 35 µs, more with nested
schemas), and every message used to build several. Loading, dumping and validating keep no
state on the instance (marshmallow 4 has no schema context), so one instance per class serves
every thread.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from marshmallow import Schema

S = TypeVar("S", bound=Schema)


@cache
def schema(cls: type[S]) -> S:
    """The shared instance of ``cls`` (built on first use)."""
    return cls()
