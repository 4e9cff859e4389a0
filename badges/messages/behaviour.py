"""What crosses Temporal around `BehaviourWorkflow` (`user/{uid}/behaviour`): its input, the
signal a sync sends when a member's bank data changed, its activity's request and answer, and the
verdicts it hands the member's badge workflow."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel

from badges.domain.financial import Verdict


class DataChanged(BaseModel):
    """Bank data changed between these dates (a sync's batch, or a goal): evaluate again."""

    first: date | None = None
    last: date | None = None
    reason: str = "sync"


class BehaviourInput(BaseModel):
    user_id: uuid.UUID
    seq: int = 0  # evaluations made so far (numbers the verdicts the badge workflow applies)
    pending: bool = True  # a first run evaluates at once (the backfill of a new link)
    next_window_close: datetime | None = None  # carried across continue-as-new


class EvaluationRequest(BaseModel):
    user_id: uuid.UUID
    seq: int
    # The workflow's clock: the evaluation answers for this moment (its day in the member's zone),
    # so windows close on the workflow's time, the time-skipping server's included.
    as_of: datetime | None = None


class EvaluationOutcome(BaseModel):
    evaluated: bool  # False: no behaviour_tracking consent (the workflow ends)
    verdicts: int = 0
    # When the next tracking window closes in the member's time zone (with their jitter): the
    # workflow evaluates again then, even if no data changed.
    next_window_close: datetime | None = None


class FinancialResults(BaseModel):
    """An evaluation's verdicts, for the member's badge workflow to record (ordered: an older one
    is dropped)."""

    # The evaluation's order (`evaluation_order`: the moment it answered for, then its number in
    # the workflow's run), so a later run's evaluations are newer than an earlier run's.
    seq: int
    verdicts: list[Verdict]
    catalogue_revision: int = 0  # the catalogue the verdicts were decided under
