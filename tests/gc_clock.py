"""Collections fed to a `GcPauses` with the clocks it reads scripted, and what its collector
exports: for tests of the pause figures without waiting for real collections."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import badges.heap
from badges.heap import GcPauses
from badges.metrics import GcPauseCollector


def scripted_collection(
    pauses: GcPauses,
    monkeypatch: pytest.MonkeyPatch,
    *,
    wall: tuple[float, float],
    cpu: tuple[float, float] = (1.0, 1.0),
    generation: int = 2,
) -> None:
    """One collection of `generation`, its wall-clock and CPU seconds at its start and its stop as
    given. The patch is the time module's own, so no real collection may run meanwhile: its
    callbacks (the process's own GcPauses, if a test installed it) would read the scripted clocks."""
    gc.disable()
    try:
        with monkeypatch.context() as patched:
            for phase, at, cpu_at in (("start", wall[0], cpu[0]), ("stop", wall[1], cpu[1])):
                patched.setattr(badges.heap.time, "perf_counter", lambda at=at: at)
                patched.setattr(badges.heap.time, "thread_time", lambda cpu_at=cpu_at: cpu_at)
                pauses(phase, {"generation": generation})
    finally:
        gc.enable()


def exposition(pauses: GcPauses) -> str:
    """What `/metrics` says of `pauses`."""
    registry = CollectorRegistry()
    registry.register(GcPauseCollector(pauses))
    return generate_latest(registry).decode()


def exported_samples(pauses: GcPauses) -> dict[tuple[str, str | None], float]:
    """Each exported sample's value by its name and generation label."""
    return {
        (sample.name, sample.labels.get("generation")): sample.value
        for family in text_string_to_metric_families(exposition(pauses))
        for sample in family.samples
    }
