"""Persistence: all of the application's SQL, one module per aggregate (a table's model and its
queries together), the Alembic migrations, data keys and the outbox. `models.py` imports every
table, for Alembic and tests. No module outside this package holds an SQL statement or builds
one (tests/unit/test_layering.py); callers get typed rows (frozen dataclasses), never bare tuples
or dicts.

One idiom: SQLAlchemy Core on psycopg, executed through the `AsyncEngine` (`engine.py`): typed
`Mapped[...]` tables, statements built with `select`/`insert`/`update`, no ORM sessions.

Hand-written statements on the psycopg pool (`pool.py`) where a benchmark shows they matter:
a one-statement round trip through the pool costs about a tenth of the CPU of the same statement
in an SQLAlchemy async transaction (bench/RESULTS.md), and these run for every event or every
synced transaction:
- the real-time path (bench/realtime.py): event receipts (`receipts`), the progress, awards and
  outbox batch (`progress`, one multi-statement script in one round trip), the rewards and review
  items the same activity writes in the batch's transaction (`rewards.grant_rewards`,
  `reviews.record_reviews`), the member workflow's pages of held events and its dead letters
  (`reviews.held_events_page`, `dead_letters.record_dead_letter`), the outbox
  tail (`outbox`), signature receipts of signed event systems (`integrations`);
- bank sync writes (bench/sync.py): `banking`.

And hand-written where a unit of work shares one psycopg transaction across modules, which the
engine would split: the consent projection with its scope-data deletion, outbox insight and
audit record (`consents`, `outbox.append_insight`, `audit.append_audit`), erasure steps and their
audit records (`erasure`), the retention purge and its audit record (`retention`), export parts
(`exports`, whose sections are found in the system catalogue). Each such module says so, and
which of its functions are Core. Migrations keep their raw SQL.

The choice is made per table, not per statement: a module that is hand-written for the reasons
above keeps its plain reads hand-written too (`consents.member_consents`, the connection and
transaction listings in `banking`), so the SQL for one table reads in one idiom, in one place.
"""
