from __future__ import annotations

import gc

import pytest

from cryptosatx.gc_tuning import YOUNG_THRESHOLD, tune_for_throughput


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_the_start_up_heap_and_collects_the_young_less_often(restored_collector):
    _, middle, oldest = gc.get_threshold()
    tune_for_throughput()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, oldest)
    assert gc.isenabled()
