-- The live tail across device_1m refreshes (issue 9). The tail's cursor is the invalidation
-- log (0016): a log row it has not seen is a statement committed since its last snapshot. A
-- device_1m refresh deletes log rows, some of statements that committed after the tail's last
-- snapshot and that it has therefore never seen; without them it had to re-read the whole raw
-- tail after every refresh (every 30 s, ~0.5-2 s at 20k-50k devices).
--
-- So the refresh keeps what it consumed here for a while: each row's identity as the tail
-- knows it (original xmin, range, kind) and the batch it was consumed in, the refresh's
-- transaction id (txid_current(): device_1m refreshes are serialised by their advisory lock
-- and take their xid after it, so batches are numbered in commit order; a 64-bit txid is
-- never reused, unlike a counter someone could reset). rollup_state.consumed_batch is the
-- last batch a refresh of that rollup committed, so a tail that saw batch B in its last
-- snapshot reads the batches (B, consumed_batch] of its new one: with the log rows it sees,
-- every statement exactly once, whichever instance refreshed. Only rows a tail may still need
-- are kept (hi at or above the old watermark: the tail reads raw rows only above the new one).
-- One row per batch, its log rows as parallel arrays: a refresh writes one tuple however many
-- rows it consumed (12k log rows cost it ~7 ms more, against ~27 ms as 12k rows with an index)
-- and prunes a handful of tuples. No row when it kept nothing.
CREATE TABLE IF NOT EXISTS live_tail_consumed (
  rollup      text          NOT NULL,
  batch       bigint        NOT NULL,
  xids        xid[]         NOT NULL,  -- the log rows' xmin (their statement's (sub)xid)
  los         timestamptz[] NOT NULL,
  his         timestamptz[] NOT NULL,
  inserted    boolean[]     NOT NULL,
  consumed_at timestamptz   NOT NULL DEFAULT statement_timestamp(),
  PRIMARY KEY (rollup, batch)
);

-- consumed_pruned: the newest batch a refresh has pruned (batches live ten minutes; a tail
-- whose last snapshot is older than a pruned batch re-reads the raw tail whole).
-- log_resets: counts log or kept-row deletions nobody accounted for (TRUNCATE, a DELETE or
-- UPDATE by hand): a tail may have missed statements then, and re-reads the raw tail whole.
ALTER TABLE rollup_state ADD COLUMN IF NOT EXISTS consumed_batch bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_state ADD COLUMN IF NOT EXISTS consumed_pruned bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_state ADD COLUMN IF NOT EXISTS log_resets bigint NOT NULL DEFAULT 0;

-- A refresh says it accounts for what it deletes (SET LOCAL joule.log_consumer = on, with its
-- lock); any other removal or rewrite of log rows (or of kept batches) bumps log_resets of the
-- rollups whose rows went.
CREATE OR REPLACE FUNCTION joule_log_rows_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('joule.log_consumer', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE rollup_state SET log_resets = log_resets + 1;
  ELSE
    UPDATE rollup_state SET log_resets = log_resets + 1
     WHERE name IN (SELECT DISTINCT rollup FROM old_rows);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS joule_log_truncated ON rollup_invalidations;
CREATE TRIGGER joule_log_truncated AFTER TRUNCATE ON rollup_invalidations
  FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();
DROP TRIGGER IF EXISTS joule_log_deleted ON rollup_invalidations;
CREATE TRIGGER joule_log_deleted AFTER DELETE ON rollup_invalidations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();
-- An UPDATE gives a row a new xmin: the old identity vanishes.
DROP TRIGGER IF EXISTS joule_log_updated ON rollup_invalidations;
CREATE TRIGGER joule_log_updated AFTER UPDATE ON rollup_invalidations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();

DROP TRIGGER IF EXISTS joule_consumed_truncated ON live_tail_consumed;
CREATE TRIGGER joule_consumed_truncated AFTER TRUNCATE ON live_tail_consumed
  FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();
DROP TRIGGER IF EXISTS joule_consumed_deleted ON live_tail_consumed;
CREATE TRIGGER joule_consumed_deleted AFTER DELETE ON live_tail_consumed
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();
DROP TRIGGER IF EXISTS joule_consumed_updated ON live_tail_consumed;
CREATE TRIGGER joule_consumed_updated AFTER UPDATE ON live_tail_consumed
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_rows_removed();
