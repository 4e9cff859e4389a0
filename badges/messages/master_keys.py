"""What crosses Temporal around `MasterKeyRotationWorkflow`: the outcome of one rotation run
(master key ids and counts only, never key material)."""

from __future__ import annotations

from pydantic import BaseModel


class MasterKeyRotation(BaseModel):
    active: str
    rotated_from: str | None = None
    rewrapped: int = 0
    retired: list[str] = []
    destroyed: list[str] = []
    # Due, but the ring comes from the environment, so an operator does it (docs/operations.md).
    rotation_due: bool = False
    destruction_due: list[str] = []
    busy: bool = False  # another rotation was running
    ring_unwritable: str | None = None  # the ring file is read-only where the worker runs
    error: str | None = None  # a data key that no configured master key opens
