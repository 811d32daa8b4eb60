-- Idempotency keys of POST /telemetry: a retried batch with the same key is answered with the
-- original result and writes nothing. The key commits in the same transaction as the rows.
-- `owner` scopes keys per client (the token id once tokens exist; '' before).
CREATE TABLE IF NOT EXISTS ingest_idempotency (
  owner       text        NOT NULL DEFAULT '',
  key         text        NOT NULL,
  body_sha256 bytea       NOT NULL,
  accepted    integer     NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS ingest_idempotency_created_idx ON ingest_idempotency (created_at);
