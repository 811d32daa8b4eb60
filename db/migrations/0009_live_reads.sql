-- Live reads (issue 9): settled answer parts are cached by version, and changes to settled
-- data are announced.
--
-- A rollup row below its watermark changes only when a refresh re-materialises a late range
-- (DELETE + INSERT of whole buckets, db/rollups.cpp). These statement triggers on the rollup
-- tables record every such change in rollup_versions: one row per (rollup, UTC hour) holding
-- a fresh number from a sequence, written in the refresh's own transaction. A cached settled
-- part is keyed by the numbers of the hours it spans, read in the same snapshot as its data,
-- so a changed hour can never be served from an older entry, on any instance (Redis keys are
-- versioned the same way). New buckets at or above the watermark are not changes: nothing
-- settled held them.
--
-- Both kinds of change are also announced with NOTIFY joule_rollup_changes, payload
-- "<kind> <rollup> <lo_us> <hi_us>" (kind: refreshed = rollup rows rewritten, pending = a late
-- write logged in rollup_invalidations below the watermark), so every instance evicts what
-- overlaps from memory at once instead of waiting for the entries to expire.
CREATE SEQUENCE IF NOT EXISTS rollup_version_seq;

CREATE TABLE IF NOT EXISTS rollup_versions (
  rollup text        NOT NULL,
  hour   timestamptz NOT NULL,
  gen    bigint      NOT NULL,
  PRIMARY KEY (rollup, hour)
);

CREATE OR REPLACE FUNCTION joule_rollup_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r   text := TG_ARGV[0];
  w   interval;
  wm  timestamptz;
  lo  timestamptz;
  hi  timestamptz;
BEGIN
  SELECT bucket_width, watermark INTO w, wm FROM rollup_state WHERE name = r;
  IF TG_OP = 'DELETE' THEN
    SELECT min(bucket), max(bucket) INTO lo, hi FROM old_rows;
  ELSE
    SELECT min(bucket), max(bucket) INTO lo, hi FROM new_rows WHERE bucket < wm;
  END IF;
  IF lo IS NULL THEN
    RETURN NULL;
  END IF;
  hi := hi + w;
  INSERT INTO rollup_versions (rollup, hour, gen)
  SELECT r, h, nextval('rollup_version_seq')
    FROM generate_series(date_bin('1 hour', lo, '2000-01-01 00:00:00+00'), hi - interval '1 microsecond',
                         interval '1 hour') h
  ON CONFLICT (rollup, hour) DO UPDATE SET gen = EXCLUDED.gen;
  PERFORM pg_notify('joule_rollup_changes', 'refreshed ' || r || ' ' ||
                    (extract(epoch from lo) * 1000000)::bigint || ' ' ||
                    (extract(epoch from hi) * 1000000)::bigint);
  RETURN NULL;
END $$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['device_1m', 'household_5m', 'device_1h'] LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS joule_changed_ins ON %I', 'rollup_' || t);
    EXECUTE format('DROP TRIGGER IF EXISTS joule_changed_del ON %I', 'rollup_' || t);
    EXECUTE format('CREATE TRIGGER joule_changed_ins AFTER INSERT ON %I REFERENCING NEW TABLE AS '
                   'new_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_rollup_changed(%L)',
                   'rollup_' || t, t);
    EXECUTE format('CREATE TRIGGER joule_changed_del AFTER DELETE ON %I REFERENCING OLD TABLE AS '
                   'old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_rollup_changed(%L)',
                   'rollup_' || t, t);
  END LOOP;
END $$;

-- A late write (its log range reaches below the rollup's watermark) is announced when it is
-- logged; writes above the watermark (the live tail) are not: nothing settled holds them.
CREATE OR REPLACE FUNCTION joule_invalidation_logged() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rec record;
BEGIN
  FOR rec IN
    SELECT n.rollup, min(n.lo) AS lo, max(n.hi) AS hi
      FROM new_rows n JOIN rollup_state s ON s.name = n.rollup
     WHERE n.lo < s.watermark
     GROUP BY n.rollup
  LOOP
    PERFORM pg_notify('joule_rollup_changes', 'pending ' || rec.rollup || ' ' ||
                      (extract(epoch from rec.lo) * 1000000)::bigint || ' ' ||
                      (extract(epoch from rec.hi) * 1000000)::bigint);
  END LOOP;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS joule_invalidation_logged ON rollup_invalidations;
CREATE TRIGGER joule_invalidation_logged AFTER INSERT ON rollup_invalidations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_invalidation_logged();
