-- An incremental live tail (issue 9): the tail folds only raw rows committed since its last
-- cycle into the buckets it holds, instead of re-reading every raw row above the watermark.
--
-- Its cursor is the invalidation log itself: every write statement on telemetry logs a row
-- in its own transaction, so a log row the tail has not seen before is a statement that
-- committed since its last snapshot, whatever the order of `ts` or of the commits. For a
-- plain INSERT the tail folds exactly that statement's rows (same xmin, inside the logged
-- range); every other kind of log row (UPDATE, DELETE, TRUNCATE, dropped partitions, ranges
-- a refresh put back, rows logged before this migration) makes it re-read the minutes the
-- range covers. This column tells the two apart; false is always safe (a re-read).
ALTER TABLE rollup_invalidations ADD COLUMN IF NOT EXISTS inserted boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION joule_log_range(t_lo timestamptz, t_hi timestamptz, hh uuid[],
                                           ins boolean)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO rollup_invalidations (rollup, lo, hi, households, inserted)
  SELECT s.name, t_lo, t_hi, CASE WHEN s.watermark > t_lo THEN hh END, ins
    FROM rollup_state s
   WHERE t_lo IS NOT NULL AND s.source IS NULL;
$$;

-- 0008's function, marking its rows as inserts.
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
  PERFORM joule_log_range(t_lo, t_hi, hh, true);
  RETURN NULL;
END $$;
