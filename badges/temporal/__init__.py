"""Temporal plumbing shared by the API and the workers: the data converter and the per-member
encryption codec, one `connect()`, and one named function per start, signal, update, query or
termination the application makes. Nothing else imports `temporalio.client`."""

from badges.temporal.client import Client, connect
from badges.temporal.commands import (
    behaviour_data_changed,
    change_consent,
    end_bank_sync,
    end_workflow,
    ensure_schedules,
    export_progress,
    record_comparative_results,
    record_event,
    record_financial_results,
    reevaluation_progress,
    request_reevaluation,
    resolve_review,
    run_peer_release,
    running_member_workflows,
    signal_sync,
    start_erasure,
    start_export,
    start_member_workflow,
    start_reevaluation,
    start_sync,
    stop_behaviour,
)

__all__ = [
    "Client",
    "behaviour_data_changed",
    "change_consent",
    "connect",
    "end_bank_sync",
    "end_workflow",
    "ensure_schedules",
    "export_progress",
    "record_comparative_results",
    "record_event",
    "record_financial_results",
    "reevaluation_progress",
    "request_reevaluation",
    "resolve_review",
    "run_peer_release",
    "running_member_workflows",
    "signal_sync",
    "start_erasure",
    "start_export",
    "start_member_workflow",
    "start_reevaluation",
    "start_sync",
    "stop_behaviour",
]
