-- API tokens (issue 8 §1). The secret is never stored: only its SHA-256, looked up by the
-- unique index and compared in constant time by the server. Rows are never deleted by the
-- API: revocation sets revoked_at, so `joule token list` keeps the history.

CREATE TABLE IF NOT EXISTS api_tokens (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  scopes       text[]      NOT NULL
               CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'ingest', 'alerts', 'admin']),
  -- Households the token may see; empty: every household.
  households   uuid[]      NOT NULL DEFAULT '{}',
  token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  -- Coarse (the server flushes it every few seconds, never once per request).
  last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_created_idx ON api_tokens (created_at, id);
