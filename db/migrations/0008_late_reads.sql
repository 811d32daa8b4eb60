-- Late data in seconds: reads serve the ranges named by pending invalidations from raw rows
-- (db/analytics.cpp) instead of the stale rollup, for the keys those writes touched.
--
-- A log row of a late write (below the rollup's watermark when it was logged) carries the
-- households its rows belong to, so a read of another household keeps using the rollup.
-- NULL means "any household": rows of current data (above the watermark: read raw anyway),
-- statements touching more than 256 households, TRUNCATE, dropped partitions, ranges a
-- refresh put back, and everything logged before this migration. NULL is always safe (the
-- read just patches more), so a watermark moving between the trigger and the read is
-- harmless.
ALTER TABLE rollup_invalidations ADD COLUMN IF NOT EXISTS households uuid[];

-- No new index: reads look up one rollup's rows whose range starts below a tier's end, which
-- the (rollup, lo) index of 0002 already bounds (rows of current data lie above every
-- watermark); another index would cost every ingest statement three more index inserts.

-- The households of a late statement, only when some raw-sourced rollup's watermark lies
-- above its first row (otherwise nobody reads the rollup there and NULL costs nothing).
-- Called with the statement's bounds; the set comes from the transition table(s) by the
-- caller (plpgsql cannot pass a transition table to a function).
CREATE OR REPLACE FUNCTION joule_log_range(t_lo timestamptz, t_hi timestamptz, hh uuid[])
RETURNS void LANGUAGE sql AS $$
  INSERT INTO rollup_invalidations (rollup, lo, hi, households)
  SELECT s.name, t_lo, t_hi, CASE WHEN s.watermark > t_lo THEN hh END
    FROM rollup_state s
   WHERE t_lo IS NOT NULL AND s.source IS NULL;
$$;

CREATE OR REPLACE FUNCTION joule_log_is_late(t_lo timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM rollup_state WHERE source IS NULL AND watermark > t_lo);
$$;

CREATE OR REPLACE FUNCTION joule_log_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t_lo timestamptz;
  t_hi timestamptz;
  hh uuid[];
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  SELECT min(ts), max(ts) INTO t_lo, t_hi FROM new_rows;
  IF t_lo IS NULL THEN
    RETURN NULL;
  END IF;
  IF joule_log_is_late(t_lo) THEN
    SELECT CASE WHEN count(*) <= 256 THEN array_agg(h) END INTO hh
      FROM (SELECT DISTINCT household_id AS h FROM new_rows) d;
  END IF;
  PERFORM joule_log_range(t_lo, t_hi, hh);
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION joule_log_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t_lo timestamptz;
  t_hi timestamptz;
  hh uuid[];
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  SELECT min(ts), max(ts) INTO t_lo, t_hi FROM old_rows;
  IF t_lo IS NULL THEN
    RETURN NULL;
  END IF;
  IF joule_log_is_late(t_lo) THEN
    SELECT CASE WHEN count(*) <= 256 THEN array_agg(h) END INTO hh
      FROM (SELECT DISTINCT household_id AS h FROM old_rows) d;
  END IF;
  PERFORM joule_log_range(t_lo, t_hi, hh);
  RETURN NULL;
END $$;

-- An UPDATE invalidates the old and the new time of every row it touched (two log rows, as
-- before), each with the households of both sides (a row may move between households).
CREATE OR REPLACE FUNCTION joule_log_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o_lo timestamptz;
  o_hi timestamptz;
  n_lo timestamptz;
  n_hi timestamptz;
  hh uuid[];
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  SELECT min(ts), max(ts) INTO o_lo, o_hi FROM old_rows;
  SELECT min(ts), max(ts) INTO n_lo, n_hi FROM new_rows;
  IF o_lo IS NULL AND n_lo IS NULL THEN
    RETURN NULL;
  END IF;
  IF joule_log_is_late(least(o_lo, n_lo)) THEN
    SELECT CASE WHEN count(*) <= 256 THEN array_agg(h) END INTO hh
      FROM (SELECT household_id AS h FROM old_rows UNION SELECT household_id FROM new_rows) d;
  END IF;
  PERFORM joule_log_range(o_lo, o_hi, hh);
  PERFORM joule_log_range(n_lo, n_hi, hh);
  RETURN NULL;
END $$;
