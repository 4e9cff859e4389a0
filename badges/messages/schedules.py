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
# AuditCheckpointWorkflow: signs a checkpoint of the audit log's chain, kept outside the database.
# Records appended since the last checkpoint are covered by the unkeyed chain alone: this bounds
# how much of the log's tail could be removed unnoticed.
AUDIT_CHECKPOINT_SCHEDULE_ID = "audit/checkpoint"
AUDIT_CHECKPOINT_EVERY = timedelta(minutes=5)
# MasterKeyRotationWorkflow: a new master key when the active one is due, re-wrapping, and the
# destruction of retired ones once backups no longer need them (`db/master_keys.py`).
MASTER_KEYS_SCHEDULE_ID = "keys/rotate-master"
MASTER_KEYS_EVERY = timedelta(days=1)
# PeerStatsReleaseWorkflow: a release of peer statistics (the interval is a setting,
# BADGES_PEER_RELEASE_INTERVAL_HOURS, default daily).
PEER_STATS_SCHEDULE_ID = "peers/release-stats"
