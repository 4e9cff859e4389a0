"""The one settings object, read from the environment and passed in where it is needed."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

import limits
from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from badges.domain.events import EventType
from badges.domain.provider_breaker import BreakerPolicy

WS_MAX_SIZE_MARGIN = 4 * 1024
# The master keys' life (docs/security.md, "What erasure guarantees"): a member's sealed data in any copy of the
# database is unreadable at most ROTATION + RETENTION days after their erasure.
DEFAULT_MASTER_KEY_ROTATION_DAYS = 90
DEFAULT_BACKUP_RETENTION_DAYS = 35
SECRET_FILE_SUFFIX = "_FILE"


class SecretFiles(PydanticBaseSettingsSource):
    """`<NAME>_FILE=/run/secrets/name` for any setting `<NAME>`: its value is that file's content
    (one trailing newline dropped), so secrets can come from mounted files (Docker and Kubernetes
    secrets) rather than the environment, where `docker inspect` and `/proc` show them. Setting
    both `<NAME>` and `<NAME>_FILE` is refused as ambiguous."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        environment = {name.upper(): value for name, value in os.environ.items()}
        values: dict[str, Any] = {}
        # A setting that is itself named `<NAME>_FILE` (BADGES_MASTER_KEYS_FILE: a key ring the
        # processes follow) keeps its own meaning; `<NAME>` is then not read from it here.
        aliases = {(field.alias or name).upper() for name, field in self.settings_cls.model_fields.items()}
        for name, field in self.settings_cls.model_fields.items():
            alias = (field.alias or name).upper()
            if alias + SECRET_FILE_SUFFIX in aliases:
                continue
            path = environment.get(alias + SECRET_FILE_SUFFIX)
            if not path:
                continue
            if alias in environment:
                raise ValueError(f"{alias} and {alias}{SECRET_FILE_SUFFIX} are both set: set one")
            text = Path(path).read_text()
            values[field.alias or name] = text[:-1] if text.endswith("\n") else text
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    badges_env: Literal["dev", "test", "prod"] = Field("prod", alias="BADGES_ENV")
    database_url: str = Field(alias="DATABASE_URL")
    temporal_address: str = Field("localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", alias="TEMPORAL_NAMESPACE")
    # Temporal's frontend beyond one machine: mutual TLS (this process's certificate and key, PEM
    # files, and the CA that signed the server's when it is a private one), an API key (Temporal
    # Cloud), or both. Empty: plain gRPC, as the embedded dev server speaks it.
    temporal_tls_cert: str = Field("", alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: str = Field("", alias="TEMPORAL_TLS_KEY")
    temporal_tls_ca: str = Field("", alias="TEMPORAL_TLS_CA")
    temporal_api_key: str = Field("", alias="TEMPORAL_API_KEY", repr=False)
    # Live events (a member's badge workflow, its webhooks, consent, erasure) on `task_queue`; batch
    # work (bank syncs, behaviour evaluations, exports, re-evaluations, the schedules' runs) on a
    # queue of its own, polled by a worker of its own with its own limits, so a backfill never
    # takes the live queue's slots. Empty: the task queue's name with `-batch`.
    task_queue: str = Field("badges", alias="BADGES_TASK_QUEUE")
    batch_task_queue: str = Field("", alias="BADGES_BATCH_TASK_QUEUE")
    batch_max_concurrent_activities: int = Field(8, alias="BADGES_BATCH_MAX_ACTIVITIES", gt=0)
    batch_max_concurrent_workflow_tasks: int = Field(8, alias="BADGES_BATCH_MAX_WORKFLOW_TASKS", gt=0)
    # Live workflow tasks one worker process runs at once (the SDK's default is 100). Those it holds
    # share its one interpreter: after a restart (every moved member's run replayed from its
    # history) 100 at once each outlasted Temporal's 10 s workflow-task timeout, were handed out
    # again and replayed again, and the live path did not recover while the load went on
    # (bench/RESULTS.md, availability); the rest wait in Temporal's queue instead.
    live_max_concurrent_workflow_tasks: int = Field(32, alias="BADGES_LIVE_MAX_WORKFLOW_TASKS", gt=0)
    # Which queues this worker process polls: `both` (one process, as a small deployment runs),
    # `live` or `batch`. Batch work is CPU-heavy (categorising, evaluating, releasing): in a
    # process of its own it never holds the live worker's interpreter lock, and it runs at
    # `BADGES_BATCH_NICE` (added niceness, 0-19), so on a shared machine the live processes get the
    # CPU first and a backfill takes what is left (docs/operations.md, "Task queues").
    worker_queues: Literal["both", "live", "batch"] = Field("both", alias="BADGES_WORKER_QUEUES")
    batch_nice: int = Field(10, alias="BADGES_BATCH_NICE", ge=0, le=19)
    # On SIGTERM a worker stops polling and gives the activities it is running this long to finish
    # (Temporal's `graceful_shutdown_timeout`) before they are cancelled and retried elsewhere; keep
    # it below the deployment's own kill timeout (Kubernetes: 30 s).
    worker_shutdown_seconds: float = Field(20, alias="BADGES_WORKER_SHUTDOWN_SECONDS", ge=0)
    # A rolling restart of the API (README: Restarts): on SIGTERM a process keeps serving for
    # `api_drain_seconds`, answering each response with `Connection: close` and /readyz with 503, so
    # clients and load balancers move to another process; then it stops accepting, ends its streams
    # with a reconnect hint, and waits up to `api_shutdown_seconds` for the requests in flight.
    api_drain_seconds: float = Field(2, alias="BADGES_API_DRAIN_SECONDS", ge=0)
    api_shutdown_seconds: int = Field(10, alias="BADGES_API_SHUTDOWN_SECONDS", gt=0)
    # How long an idle keep-alive connection stays open: longer than clients and load balancers
    # keep theirs (httpx 5 s, browsers about 60 s, AWS load balancers 60 s), so the server never
    # closes one just as its client sends a request on it (uvicorn's default, 5 s, races httpx's).
    api_keep_alive_seconds: int = Field(75, alias="BADGES_API_KEEP_ALIVE_SECONDS", gt=0)
    # At most this many batch activities started per second on the whole batch queue (Temporal's
    # server enforces it across workers); 0: no limit. Batch work shares Temporal's server and
    # PostgreSQL with live events: on a small deployment this is what keeps a backfill from
    # taking their share.
    batch_activities_per_second: float = Field(0, alias="BADGES_BATCH_ACTIVITIES_PER_SECOND", ge=0)
    # The most workflow runs one worker process keeps in memory (Temporal's sticky cache); a run
    # not in it replays its history on its next task. A full garbage collection walks every cached
    # run, so this bounds the worker's longest pause (docs/deployment.md: What scales how).
    worker_max_cached_workflows: int = Field(1_000, alias="BADGES_WORKER_MAX_CACHED_WORKFLOWS", gt=0)
    # The worker's garbage-collector thresholds, "gen0,gen1,gen2" (`gc.set_threshold`).
    worker_gc_thresholds: str = Field("700,10,10", alias="BADGES_WORKER_GC_THRESHOLDS")
    jwt_secret: str = Field(alias="BADGES_JWT_SECRET", min_length=32)
    jwt_issuer: str = Field("badges", alias="BADGES_JWT_ISSUER")
    jwt_audience: str = Field("badges", alias="BADGES_JWT_AUDIENCE")
    # The master keys that wrap data keys: "id:base64key[,id:base64key…]", the first the active
    # wrapping key, the rest still readable. Either in the environment (BADGES_MASTER_KEYS) or in
    # a file (BADGES_MASTER_KEYS_FILE: the same items, one a line), as a secret store mounts it;
    # never in the database or its backups. Only the file can be rotated by the schedule.
    master_keys: str = Field("", alias="BADGES_MASTER_KEYS")
    master_keys_file: str = Field("", alias="BADGES_MASTER_KEYS_FILE")
    # A new master key every this many days (the schedule `keys/rotate-master`); a retired one is
    # destroyed once the backups that may need it are gone: this many days after it retired.
    master_key_rotation_days: int = Field(
        DEFAULT_MASTER_KEY_ROTATION_DAYS, alias="BADGES_MASTER_KEY_ROTATION_DAYS", gt=0
    )
    backup_retention_days: int = Field(DEFAULT_BACKUP_RETENTION_DAYS, alias="BADGES_BACKUP_RETENTION_DAYS", gt=0)
    # Keys the HMAC that turns a token `sub` into a lookup digest, so the DB never holds the sub.
    identity_pepper: str = Field(alias="BADGES_IDENTITY_PEPPER", min_length=16)
    # Origins of the Temporal Web UI allowed to call the codec endpoint (comma-separated).
    codec_cors_origins: str = Field("http://localhost:8233,http://127.0.0.1:8233", alias="BADGES_CODEC_CORS_ORIGINS")
    # Where staff open the Temporal Web UI: the operator pages link a member's workflows there.
    temporal_ui_url: str = Field("http://localhost:8233", alias="BADGES_TEMPORAL_UI_URL")
    max_body_bytes: int = Field(64 * 1024, alias="BADGES_MAX_BODY_BYTES")
    # The badge catalogue loaded into the database at start-up; empty: the one shipped in the package.
    catalogue_path: str = Field("", alias="BADGES_CATALOGUE_PATH")
    # Anti-gaming at the door: events whose timestamp lies further ahead (clock skew) or further
    # back than this are refused; rates per member and per integration (the `limits` notation).
    event_max_future_seconds: int = Field(300, alias="BADGES_EVENT_MAX_FUTURE_SECONDS", ge=0)
    event_max_age_hours: int = Field(7 * 24, alias="BADGES_EVENT_MAX_AGE_HOURS", gt=0)
    # Award webhooks may go to http:// and private addresses: only for local development and tests.
    webhook_allow_private_targets: bool = Field(False, alias="BADGES_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    # Trust per source: the event types a member's own token may report (REST and WebSocket). The
    # rest (attendance and voting by default) are facts the event system attests with a signed
    # integration; a member reporting one gets 403 `needs-attestation`.
    member_reported_types: str = Field("tool_usage", alias="BADGES_MEMBER_REPORTED_TYPES")
    member_event_rate: str = Field("120/minute", alias="BADGES_MEMBER_EVENT_RATE")
    integration_event_rate: str = Field("6000/minute", alias="BADGES_INTEGRATION_EVENT_RATE")
    # Limits on expensive calls, all shared by every API process (counters in PostgreSQL): requests
    # to routes without a bearer token (Plaid webhooks, signed integration events, the dev token)
    # per source address; outbound fetches of Plaid verification keys per source address; new
    # exports per member; forced syncs (`.../relinked`) per bank connection; new goals per member
    # (each reached goal earns its badge once: this bounds what creating goals can earn).
    address_rate: str = Field("6000/minute", alias="BADGES_ADDRESS_RATE")
    key_fetch_rate: str = Field("10/minute", alias="BADGES_KEY_FETCH_RATE")
    export_rate: str = Field("3/day", alias="BADGES_EXPORT_RATE")
    relink_rate: str = Field("5/hour", alias="BADGES_RELINK_RATE")
    goal_rate: str = Field("10/month", alias="BADGES_GOAL_RATE")
    # Plaid: the host the plaid-python client talks to (`make dev`: the sandbox bank on :8100).
    plaid_host: str = Field("http://127.0.0.1:8100", alias="PLAID_HOST")
    plaid_client_id: str = Field("sandbox-client-id", alias="PLAID_CLIENT_ID")
    plaid_secret: str = Field("sandbox-secret", alias="PLAID_SECRET")
    # TrueLayer Data API v1 (`make dev`: the local TrueLayer sandbox on :8101; the real sandbox is
    # https://auth.truelayer-sandbox.com and https://api.truelayer-sandbox.com). The redirect is the
    # client's page that receives `code` and posts it to POST /v1/me/bank/connections.
    truelayer_auth_url: str = Field("http://127.0.0.1:8101", alias="TRUELAYER_AUTH_URL")
    truelayer_api_url: str = Field("http://127.0.0.1:8101", alias="TRUELAYER_API_URL")
    truelayer_client_id: str = Field("sandbox-client-id", alias="TRUELAYER_CLIENT_ID")
    truelayer_client_secret: str = Field("sandbox-secret", alias="TRUELAYER_CLIENT_SECRET")
    truelayer_redirect_uri: str = Field("http://localhost:8000/bank/truelayer/callback", alias="TRUELAYER_REDIRECT_URI")
    # Yodlee API v1.1 (`make dev`: the local Yodlee sandbox on :8102, FastLink stood in for by its
    # /fastlink page; Yodlee's sandbox is https://sandbox.api.yodlee.com/ysl with FastLink 4 at
    # https://fl4.sandbox.yodlee.com/authenticate/restserver/fastlink). The admin login name
    # registers members; the redirect is the client's page that receives FastLink's
    # `providerAccountId` and `state` and posts them to POST /v1/me/bank/connections.
    yodlee_api_url: str = Field("http://127.0.0.1:8102", alias="YODLEE_API_URL")
    yodlee_fastlink_url: str = Field("http://127.0.0.1:8102/fastlink", alias="YODLEE_FASTLINK_URL")
    yodlee_client_id: str = Field("sandbox-client-id", alias="YODLEE_CLIENT_ID")
    yodlee_secret: str = Field("sandbox-secret", alias="YODLEE_SECRET")
    yodlee_admin_login_name: str = Field("sandbox-admin", alias="YODLEE_ADMIN_LOGIN_NAME")
    yodlee_redirect_uri: str = Field("http://localhost:8000/bank/yodlee/callback", alias="YODLEE_REDIRECT_URI")
    # Where providers reach this API (webhooks): `{public_url}/v1/webhooks/plaid`.
    public_url: str = Field("http://localhost:8000", alias="BADGES_PUBLIC_URL")
    bank_sync_interval_seconds: float = Field(6 * 3600, alias="BADGES_BANK_SYNC_INTERVAL_SECONDS", gt=0)
    # Open Badges credentials (docs/api/credentials.md): the issuer's name in every credential
    # (its id is `{public_url}/v1/credentials/issuer`), and how long one signing key signs before
    # the next credential asked for makes a new one (the old key's private half is destroyed; its
    # public half stays published, so what it signed still verifies).
    credential_issuer_name: str = Field("Badges v2", alias="BADGES_CREDENTIAL_ISSUER_NAME", min_length=1)
    issuer_key_rotation_days: int = Field(90, alias="BADGES_ISSUER_KEY_ROTATION_DAYS", gt=0)
    # The breaker per provider (docs/api/open-banking.md, "Graceful degradation"): how many distinct connections
    # failing against one provider since its last success pause its syncs, the first pause, and
    # the longest (each failed probe doubles it).
    provider_breaker_connections: int = Field(5, alias="BADGES_PROVIDER_BREAKER_CONNECTIONS", ge=1)
    provider_breaker_cool_down_seconds: float = Field(120, alias="BADGES_PROVIDER_BREAKER_COOL_DOWN_SECONDS", gt=0)
    provider_breaker_max_cool_down_seconds: float = Field(
        3600, alias="BADGES_PROVIDER_BREAKER_MAX_COOL_DOWN_SECONDS", gt=0
    )

    @property
    def provider_breaker(self) -> BreakerPolicy:
        return BreakerPolicy(
            connections_to_open=self.provider_breaker_connections,
            cool_down=timedelta(seconds=self.provider_breaker_cool_down_seconds),
            max_cool_down=timedelta(seconds=self.provider_breaker_max_cool_down_seconds),
        )

    # Peer statistics (docs/api/peers.md, "Peer statistics"): the privacy loss one release may spend (ε, no
    # comparative badge's `anonymization.epsilon` may be lower) and each member's budget over any
    # 365 days (releases refused past it); the smallest group worth publishing (a badge's
    # `anonymization.minGroupSize` may ask for more); how often the Schedule runs a release.
    peer_release_epsilon: float = Field(1.0, alias="BADGES_PEER_RELEASE_EPSILON", gt=0)
    peer_yearly_epsilon: float = Field(12.0, alias="BADGES_PEER_YEARLY_EPSILON", gt=0)
    peer_min_group_size: int = Field(20, alias="BADGES_PEER_MIN_GROUP_SIZE", ge=1)
    peer_release_interval_hours: float = Field(24.0, alias="BADGES_PEER_RELEASE_INTERVAL_HOURS", gt=0)
    # Contacts (docs/api/peers.md, "Contacts"): the most contacts a member may have (also the privacy unit's
    # bound in the contacts release: a member is in at most this many contacts groups), how long an
    # invitation code stays valid, the fewest consenting contacts a group needs, and the privacy
    # loss one contacts release may spend (its own ledger entry, in the same yearly budget).
    contacts_max: int = Field(25, alias="BADGES_CONTACTS_MAX", ge=1, le=1000)
    contacts_invitation_hours: float = Field(72.0, alias="BADGES_CONTACTS_INVITATION_HOURS", gt=0)
    contacts_min_group_size: int = Field(10, alias="BADGES_CONTACTS_MIN_GROUP_SIZE", ge=2)
    contacts_release_epsilon: float = Field(1.0, alias="BADGES_CONTACTS_RELEASE_EPSILON", gt=0)
    # How a release's ε is shared (docs/api/peers.md, "Peer statistics": each statistic's share is its weight
    # over the sum of the weights the release uses; with the shipped catalogue they add up to 1):
    # the roll-up counts; each badge dimension's widest target percentile (p95: the accuracy
    # target) and its other targets (p99); each dimension's comparisons statistics; the
    # dimensions released and the percentiles the comparisons page places a member with.
    peer_counts_weight: float = Field(0.05, alias="BADGES_PEER_COUNTS_WEIGHT", gt=0)
    peer_target_weight: float = Field(0.375, alias="BADGES_PEER_TARGET_WEIGHT", gt=0)
    peer_other_targets_weight: float = Field(0.025, alias="BADGES_PEER_OTHER_TARGETS_WEIGHT", gt=0)
    peer_display_weight: float = Field(0.03, alias="BADGES_PEER_DISPLAY_WEIGHT", gt=0)
    peer_dimensions: str = Field("postcode,salary_bracket,dependants,age_range,segment", alias="BADGES_PEER_DIMENSIONS")
    peer_savings_rate_percentiles: str = Field("25,50,75", alias="BADGES_PEER_SAVINGS_RATE_PERCENTILES")
    peer_salary_percentiles: str = Field("25,50,75", alias="BADGES_PEER_SALARY_PERCENTILES")

    @field_validator("worker_gc_thresholds")
    @classmethod
    def _gc_thresholds(cls, value: str) -> str:
        parse_gc_thresholds(value)
        return value

    @property
    def parsed_worker_gc_thresholds(self) -> tuple[int, int, int]:
        return parse_gc_thresholds(self.worker_gc_thresholds)

    @field_validator("peer_savings_rate_percentiles", "peer_salary_percentiles")
    @classmethod
    def _peer_percentiles(cls, value: str) -> str:
        alphas = parse_percentiles(value)
        if not alphas or any(not 1 <= alpha <= 99 for alpha in alphas):
            raise ValueError("a comma-separated list of percentiles from 1 to 99")
        return value

    @field_validator("peer_dimensions")
    @classmethod
    def _peer_dimensions(cls, value: str) -> str:
        known = {"postcode", "salary_bracket", "dependants", "age_range", "segment"}
        found = [part.strip() for part in value.split(",") if part.strip()]
        if not found or set(found) - known:
            raise ValueError(f"a comma-separated list of {', '.join(sorted(known))}")
        return value

    # The audit log's anchor: "id:base64key[,id:base64key…]" (32-byte HMAC-SHA256 keys); the first
    # signs new checkpoints, every listed one verifies. Kept with the other secrets, never in the
    # database, so whoever can rewrite the audit table cannot sign a checkpoint for what they wrote.
    # Empty: no checkpoints are written (the worker warns) and `verify` needs `--chain-only`.
    audit_anchor_keys: str = Field("", alias="BADGES_AUDIT_ANCHOR_KEYS")
    # Where the signed checkpoints are written, one file each, never rewritten: in production a
    # write-once store that the database's owners cannot change (docs/api/audit.md).
    audit_checkpoint_dir: str = Field(".data/audit-checkpoints", alias="BADGES_AUDIT_CHECKPOINT_DIR")
    # Each process's cache of unwrapped data keys: at most this many, each used for at most this
    # long before its row is read again (the bound on a missed erasure notice, too).
    key_cache_size: int = Field(50_000, alias="BADGES_KEY_CACHE_SIZE", gt=0)
    key_cache_seconds: float = Field(120.0, alias="BADGES_KEY_CACHE_SECONDS", gt=0)
    # PostgreSQL connections of one API or worker process, at most `db_connections_per_process`:
    # its psycopg pool, its SQLAlchemy engine's pool (no overflow) and one LISTEN connection. Sized
    # so that every process of a rolling restart at its peak (one process more than usual) fits
    # under the server's `max_connections` (docs/deployment.md: The PostgreSQL connection budget):
    # a request that finds its pool busy then waits up to `db_pool_wait_seconds` for a connection,
    # rather than the server refusing one more (a 503).
    db_pool_size: int = Field(8, alias="BADGES_DB_POOL_SIZE", gt=0)
    db_engine_pool_size: int = Field(4, alias="BADGES_DB_ENGINE_POOL_SIZE", gt=0)
    db_pool_wait_seconds: float = Field(10.0, alias="BADGES_DB_POOL_WAIT_SECONDS", gt=0)
    # The worker's Prometheus metrics (`/metrics` on this port); 0: none. The API serves its own.
    worker_metrics_port: int = Field(0, alias="BADGES_WORKER_METRICS_PORT", ge=0)
    # The Temporal SDK's own metrics of the worker (its runtime's Prometheus exporter: task slots,
    # poll and schedule-to-start latencies, sticky cache, `temporal_*`) on a port of their own;
    # 0: none.
    worker_sdk_metrics_port: int = Field(0, alias="BADGES_WORKER_SDK_METRICS_PORT", ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretFiles(settings_cls), dotenv_settings, file_secret_settings)

    @field_validator(
        "member_event_rate",
        "integration_event_rate",
        "address_rate",
        "key_fetch_rate",
        "export_rate",
        "relink_rate",
        "goal_rate",
    )
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        if limits.parse(value).amount < 1:
            raise ValueError("a rate allows at least one")
        return value

    @field_validator("member_reported_types")
    @classmethod
    def _known_event_types(cls, value: str) -> str:
        parse_event_types(value)
        return value

    @cached_property
    def member_reported_event_types(self) -> frozenset[str]:
        return parse_event_types(self.member_reported_types)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _one_master_key_source(self) -> Settings:
        if bool(self.master_keys) == bool(self.master_keys_file):
            raise ValueError("set exactly one of BADGES_MASTER_KEYS and BADGES_MASTER_KEYS_FILE")
        if self.master_keys:
            parse_master_keys(self.master_keys)
        return self

    @field_validator("audit_anchor_keys")
    @classmethod
    def _audit_anchor_keys_parse(cls, value: str) -> str:
        parse_audit_anchor_keys(value)
        return value

    @cached_property
    def parsed_master_keys(self) -> list[tuple[str, bytes]]:
        """The master keys as configured now (a file is read again by `MasterKeys.from_file`)."""
        if self.master_keys_file:
            return read_master_keys_file(Path(self.master_keys_file))
        return parse_master_keys(self.master_keys)

    @property
    def parsed_audit_anchor_keys(self) -> list[tuple[str, bytes]]:
        """The anchoring keys, the signing one first; empty when anchoring is not configured. (Not
        cached: `model_copy(update=...)` keeps a cached value, and read once per process anyway.)"""
        return parse_audit_anchor_keys(self.audit_anchor_keys)

    @property
    def ws_max_size(self) -> int:
        """The bound the server (uvicorn `ws_max_size`) puts on one WebSocket message: a little above
        the app's own limit, so the app's check, which closes with a reason, is the one that fires."""
        return self.max_body_bytes + WS_MAX_SIZE_MARGIN

    @property
    def batch_queue(self) -> str:
        """The task queue of batch work (`BADGES_BATCH_TASK_QUEUE`, by default the task queue's
        name with `-batch`: a deployment, or a test, that names its queue names both)."""
        return self.batch_task_queue or f"{self.task_queue}-batch"

    @model_validator(mode="after")
    def _two_task_queues(self) -> Settings:
        if self.batch_queue == self.task_queue:
            raise ValueError("BADGES_BATCH_TASK_QUEUE must differ from BADGES_TASK_QUEUE")
        return self

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq (psycopg without SQLAlchemy) accepts it."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def db_connections_per_process(self) -> int:
        """The most PostgreSQL connections one API or worker process holds: both pools and its listener."""
        return self.db_pool_size + self.db_engine_pool_size + 1


def parse_event_types(value: str) -> frozenset[str]:
    """A comma-separated list of event types (possibly empty), each one the API knows."""
    types = frozenset(item.strip() for item in value.split(",") if item.strip())
    if unknown := types - set(get_args(EventType)):
        raise ValueError(f"unknown event types {sorted(unknown)}: the types are {', '.join(get_args(EventType))}")
    return types


def parse_master_keys(value: str) -> list[tuple[str, bytes]]:
    """`id:base64key` items separated by commas or lines (blank lines and `#` comments skipped)."""
    keys: list[tuple[str, bytes]] = []
    items = [
        item.strip() for line in value.splitlines() if not line.lstrip().startswith("#") for item in line.split(",")
    ]
    for item in filter(None, items):
        keys.append(_key_item(item, "BADGES_MASTER_KEYS", "master key", " (AES-256)"))
    if not keys:
        raise ValueError("BADGES_MASTER_KEYS holds no key")
    if len({key_id for key_id, _ in keys}) != len(keys):
        raise ValueError("a master key id is listed twice")
    return keys


def parse_audit_anchor_keys(value: str) -> list[tuple[str, bytes]]:
    """`BADGES_AUDIT_ANCHOR_KEYS`: `id:base64key[,…]` of 32-byte keys, the signing one first, ids
    unique (a checkpoint names the key that signed it); no key at all when it is empty."""
    keys: list[tuple[str, bytes]] = []
    for item in value.split(",") if value.strip() else []:
        key_id, key = _key_item(item.strip(), "BADGES_AUDIT_ANCHOR_KEYS", "audit anchor key")
        if any(key_id == known for known, _ in keys):
            raise ValueError(f"BADGES_AUDIT_ANCHOR_KEYS names key {key_id!r} twice")
        keys.append((key_id, key))
    return keys


def _key_item(item: str, setting: str, name: str, kind: str = "") -> tuple[str, bytes]:
    """One `id:base64key` item of a key list setting: its id and its 32 bytes."""
    key_id, sep, encoded = item.partition(":")
    if not sep or not key_id:
        raise ValueError(f"{setting} items must look like 'id:base64key'")
    key = base64.b64decode(encoded, validate=True)
    if len(key) != 32:
        raise ValueError(f"{name} {key_id!r} must be 32 bytes{kind}, got {len(key)}")
    return key_id, key


def read_master_keys_file(path: Path) -> list[tuple[str, bytes]]:
    try:
        return parse_master_keys(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def parse_percentiles(value: str) -> tuple[int, ...]:
    """`"25,50,75"` → (25, 50, 75): distinct, ascending."""
    return tuple(sorted({int(part) for part in value.split(",") if part.strip()}))


def parse_gc_thresholds(value: str) -> tuple[int, int, int]:
    """`"700,10,10"` → (700, 10, 10): the three thresholds `gc.set_threshold` takes, each ≥ 1."""
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 3 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError("three whole numbers ≥ 1, comma-separated: gen0,gen1,gen2")
    gen0, gen1, gen2 = (int(part) for part in parts)
    return gen0, gen1, gen2
