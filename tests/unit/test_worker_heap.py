"""The worker's heap settings: its garbage collector's thresholds are the configured ones."""

from __future__ import annotations

import base64
import gc

import pytest

import badges.workers.main
from badges.config import Settings, parse_gc_thresholds


def settings(**values: str) -> Settings:
    base = {
        "DATABASE_URL": "postgresql://x/y",
        "BADGES_JWT_SECRET": "s" * 32,
        "BADGES_IDENTITY_PEPPER": "p" * 16,
        "BADGES_MASTER_KEYS": "k:" + base64.b64encode(b"k" * 32).decode(),
    }
    return Settings(**base, **values)  # type: ignore[arg-type]


def test_the_worker_sets_the_configured_gc_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(badges.workers.main, "freeze_startup_heap", lambda: None)  # not this test process's heap
    before = gc.get_threshold()
    try:
        badges.workers.main.settle_heap(settings(BADGES_WORKER_GC_THRESHOLDS="5000,20,100"))
        assert gc.get_threshold() == (5000, 20, 100)
        badges.workers.main.settle_heap(settings())
        assert gc.get_threshold() == parse_gc_thresholds(Settings.model_fields["worker_gc_thresholds"].default)
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize("value", ["700,10", "700,10,10,10", "0,10,10", "a,b,c", "700,-1,10"])
def test_gc_thresholds_are_three_whole_numbers_of_at_least_one(value: str) -> None:
    with pytest.raises(ValueError, match="gen0,gen1,gen2"):
        settings(BADGES_WORKER_GC_THRESHOLDS=value)


def test_the_cache_size_is_a_setting() -> None:
    assert settings(BADGES_WORKER_MAX_CACHED_WORKFLOWS="1234").worker_max_cached_workflows == 1234
    with pytest.raises(ValueError):
        settings(BADGES_WORKER_MAX_CACHED_WORKFLOWS="0")
