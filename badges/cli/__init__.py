"""Command-line entry points, each run as `python -m badges.cli.<name>`: `dev` (what `make dev`
runs) and `demo` (its demo members), `keys` (master-key rotation) and `audit` (the audit log's
hash chain). Long-running processes keep theirs with their layer: `badges.workers.main`,
`badges.db.migrate`, `badges.banking.sandbox`."""
