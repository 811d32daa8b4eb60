-- Writes that bypass telemetry's own triggers are logged too, and the log stays small.
--
-- 0002 logs every INSERT/UPDATE/DELETE statement on the partitioned parent. Statements that
-- name a partition, TRUNCATE, and partitions that are dropped or detached changed the raw
-- rows without a log entry, so rollups below the watermark stayed wrong while fresh_as_of
-- said "now". Here every partition gets the same statement triggers (created with it by the
-- server, or adopted when someone else attaches one), TRUNCATE is logged on the parent and on
-- every partition, and partitions leaving telemetry are logged with their bounds.

-- Log rows older than a policy's start_offset are merged by the refresh into one row per
-- island and marked kept: they wait for a manual refresh instead of being deleted and
-- re-inserted every cycle.
ALTER TABLE rollup_invalidations ADD COLUMN IF NOT EXISTS kept boolean NOT NULL DEFAULT false;

-- A rollup built from another rollup (config/rollups.cpp, `source`) learns of changes from
-- its source's refresh, not from writes: the triggers log only for rollups over raw rows.
-- Written by the server from the definitions after migrating (db/rollups.cpp).
ALTER TABLE rollup_state ADD COLUMN IF NOT EXISTS source text;

-- The log functions of 0002, for raw-sourced rollups only, and silent inside the partition
-- keeper's own transaction (db/partitions.cpp sets joule.partition_maintenance with SET
-- LOCAL): moving rows out of the default partition changes no aggregate.
CREATE OR REPLACE FUNCTION joule_log_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM new_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL AND s.source IS NULL;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION joule_log_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM old_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL AND s.source IS NULL;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION joule_log_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM old_rows
          UNION ALL
          SELECT min(ts), max(ts) FROM new_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL AND s.source IS NULL;
  RETURN NULL;
END $$;

-- TRUNCATE has no transition table: a BEFORE trigger reads the time range still there
-- (min/max through the (ts, device_id) index). TRUNCATE telemetry fires the parent's and every
-- partition's trigger; the ranges overlap, which costs nothing but a few log rows.
CREATE OR REPLACE FUNCTION joule_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t_lo timestamptz;
  t_hi timestamptz;
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT min(ts), max(ts) FROM %s', TG_RELID::regclass) INTO t_lo, t_hi;
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, t_lo, t_hi FROM rollup_state s WHERE t_lo IS NOT NULL AND s.source IS NULL;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS telemetry_log_truncate ON telemetry;
CREATE TRIGGER telemetry_log_truncate BEFORE TRUNCATE ON telemetry
  FOR EACH STATEMENT EXECUTE FUNCTION joule_log_truncate();

-- The partitions whose triggers Joule installed, with their bounds: when one leaves
-- telemetry (DROP TABLE, DETACH PARTITION) its rows are gone but no statement saw them, so
-- its bounds are what gets logged. NULL bounds: the default partition (range unknown, not
-- logged when dropped).
CREATE TABLE IF NOT EXISTS partition_registry (
  relid oid PRIMARY KEY,
  name  text NOT NULL,
  lo    timestamptz,
  hi    timestamptz
);

-- Installs the statement triggers on one partition and registers it; with log_rows, the
-- rows it already holds are logged (a table attached with data: its rows just appeared).
CREATE OR REPLACE FUNCTION joule_adopt_partition(part regclass, log_rows boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  bound text := pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = part), part);
  t_lo timestamptz;
  t_hi timestamptz;
BEGIN
  EXECUTE format('CREATE OR REPLACE TRIGGER telemetry_log_insert AFTER INSERT ON %s '
                 'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                 'EXECUTE FUNCTION joule_log_new_rows()', part);
  EXECUTE format('CREATE OR REPLACE TRIGGER telemetry_log_delete AFTER DELETE ON %s '
                 'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT '
                 'EXECUTE FUNCTION joule_log_old_rows()', part);
  EXECUTE format('CREATE OR REPLACE TRIGGER telemetry_log_update AFTER UPDATE ON %s '
                 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                 'EXECUTE FUNCTION joule_log_changed_rows()', part);
  EXECUTE format('CREATE OR REPLACE TRIGGER telemetry_log_truncate BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION joule_log_truncate()', part);
  INSERT INTO partition_registry (relid, name, lo, hi)
  VALUES (part, part::text,
          (regexp_match(bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
          (regexp_match(bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz)
  ON CONFLICT (relid) DO UPDATE SET name = EXCLUDED.name, lo = EXCLUDED.lo, hi = EXCLUDED.hi;
  IF log_rows THEN
    EXECUTE format('SELECT min(ts), max(ts) FROM %s', part) INTO t_lo, t_hi;
    INSERT INTO rollup_invalidations (rollup, lo, hi)
    SELECT s.name, t_lo, t_hi FROM rollup_state s WHERE t_lo IS NOT NULL AND s.source IS NULL;
  END IF;
END $$;

-- Compares telemetry's partitions with the registry: partitions that left are logged with
-- their bounds (and lose the triggers, if they live on as plain tables); partitions nobody
-- registered are adopted. Run by the event trigger below after DDL, and by the partition
-- keeper on every check (the fallback when the event trigger could not be created).
CREATE OR REPLACE FUNCTION joule_sync_partitions() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  parent regclass := to_regclass('telemetry');
  r record;
  changed integer := 0;
BEGIN
  IF parent IS NULL OR to_regclass('partition_registry') IS NULL THEN
    RETURN 0;
  END IF;
  FOR r IN DELETE FROM partition_registry p
            WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i
                               WHERE i.inhrelid = p.relid AND i.inhparent = parent)
            RETURNING p.relid, p.lo, p.hi LOOP
    INSERT INTO rollup_invalidations (rollup, lo, hi)
    SELECT s.name, r.lo, r.hi - interval '1 microsecond' FROM rollup_state s
     WHERE r.lo IS NOT NULL AND r.hi IS NOT NULL AND s.source IS NULL;
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = r.relid) THEN
      EXECUTE format('DROP TRIGGER IF EXISTS telemetry_log_insert ON %s', r.relid::regclass);
      EXECUTE format('DROP TRIGGER IF EXISTS telemetry_log_delete ON %s', r.relid::regclass);
      EXECUTE format('DROP TRIGGER IF EXISTS telemetry_log_update ON %s', r.relid::regclass);
      EXECUTE format('DROP TRIGGER IF EXISTS telemetry_log_truncate ON %s', r.relid::regclass);
    END IF;
    changed := changed + 1;
  END LOOP;
  FOR r IN SELECT i.inhrelid FROM pg_inherits i
            WHERE i.inhparent = parent
              AND NOT EXISTS (SELECT 1 FROM partition_registry p WHERE p.relid = i.inhrelid) LOOP
    PERFORM joule_adopt_partition(r.inhrelid::regclass, true);
    changed := changed + 1;
  END LOOP;
  RETURN changed;
END $$;

-- Every partition there is now: adopted without logging (its rows were logged when written).
SELECT joule_adopt_partition(i.inhrelid::regclass, false)
  FROM pg_inherits i WHERE i.inhparent = 'telemetry'::regclass;

-- DDL anywhere in the database runs the comparison at once, in the DDL's own transaction.
-- Event triggers need a superuser; without one the partition keeper's periodic check is the
-- only (later) detection. The function runs as its owner so that other roles' DDL in this
-- database is not refused for want of rights on Joule's tables.
CREATE OR REPLACE FUNCTION joule_partitions_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('joule.partition_maintenance', true) = 'on' THEN
    RETURN;
  END IF;
  PERFORM joule_sync_partitions();
END $$;

DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION joule_sync_partitions() SECURITY DEFINER SET search_path = %I, pg_temp',
                 current_schema());
  EXECUTE format('ALTER FUNCTION joule_adopt_partition(regclass, boolean) SET search_path = %I, pg_temp',
                 current_schema());
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    DROP EVENT TRIGGER IF EXISTS joule_partitions_ddl;
    CREATE EVENT TRIGGER joule_partitions_ddl ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'DROP TABLE')
      EXECUTE FUNCTION joule_partitions_ddl();
  ELSE
    RAISE NOTICE 'joule: not a superuser, so no event trigger: dropped or detached telemetry '
                 'partitions are logged by the partition keeper''s next check';
  END IF;
END $$;
