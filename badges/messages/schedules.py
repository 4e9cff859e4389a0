"""The Temporal Schedules that start workflows on their own: their ids and how often they fire.
The worker creates them at start-up (`badges.temporal.ensure_schedules`)."""

from __future__ import annotations

from datetime import timedelta

# RewardsReleaseWorkflow: grants deferred rewards once a new month brings budget.
RELEASE_SCHEDULE_ID = "rewards/release-deferred"
RELEASE_EVERY = timedelta(hours=1)
# RetentionWorkflow: deletes what is older than the programme keeps it.
RETENTION_SCHEDULE_ID = "retention/purge"
RETENTION_EVERY = timedelta(days=1)
# MasterKeyRotationWorkflow: a new master key when the active one is due, re-wrapping, and the
# destruction of retired ones once backups no longer need them (`db/master_keys.py`).
MASTER_KEYS_SCHEDULE_ID = "keys/rotate-master"
MASTER_KEYS_EVERY = timedelta(days=1)
