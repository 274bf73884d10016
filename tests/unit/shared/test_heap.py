"""What a process loads at start is kept out of the garbage collector's walks (``shared.heap``),
by every long-lived role: the gateway's gunicorn workers once they have loaded the app."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pettycash import server
from shared.config import load_settings
from shared.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_is_alive_at_the_freeze_is_left_out_of_later_collections(unfrozen: None) -> None:
    loaded = [object() for _ in range(10)], {"a": [1, 2]}  # tracked containers, alive at start
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > 0
    walked = {id(o) for o in gc.get_objects()}
    assert id(loaded) not in walked
    assert id(loaded[1]) not in walked
    later = {"made": ["after"]}
    assert id(later) in {id(o) for o in gc.get_objects()}  # what comes after is collected as usual


def test_each_gateway_worker_freezes_once_it_has_loaded_the_app(unfrozen: None, tmp_path: object) -> None:
    settle = server.options(load_settings({"PETTYCASH_VAR_DIR": str(tmp_path)}))["post_worker_init"]
    assert gc.get_freeze_count() == 0
    settle(None)
    assert gc.get_freeze_count() > 0
