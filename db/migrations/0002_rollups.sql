-- Rollups with mergeable partial state (sums, counts, maxima; never averages), so that
-- averages stay exact when buckets are combined. Buckets are UTC, origin 2000-01-01.
CREATE TABLE IF NOT EXISTS rollup_device_1m (
  bucket        timestamptz NOT NULL,
  device_id     uuid        NOT NULL,
  energy_wh_sum double precision,
  power_w_sum   double precision,
  power_w_count bigint      NOT NULL,
  power_w_max   double precision,
  PRIMARY KEY (device_id, bucket)
);
CREATE INDEX IF NOT EXISTS rollup_device_1m_bucket_idx ON rollup_device_1m (bucket, device_id);

CREATE TABLE IF NOT EXISTS rollup_household_5m (
  bucket        timestamptz NOT NULL,
  household_id  uuid        NOT NULL,
  energy_wh_sum double precision,
  power_w_sum   double precision,
  power_w_count bigint      NOT NULL,
  PRIMARY KEY (household_id, bucket)
);
CREATE INDEX IF NOT EXISTS rollup_household_5m_bucket_idx ON rollup_household_5m (bucket, household_id);

CREATE TABLE IF NOT EXISTS rollup_device_1h (
  bucket        timestamptz NOT NULL,
  device_id     uuid        NOT NULL,
  energy_wh_sum double precision,
  power_w_sum   double precision,
  power_w_count bigint      NOT NULL,
  power_w_max   double precision,
  PRIMARY KEY (device_id, bucket)
);
CREATE INDEX IF NOT EXISTS rollup_device_1h_bucket_idx ON rollup_device_1h (bucket, device_id);

-- One row per rollup. watermark: end of the last materialised bucket (NULL = nothing yet).
CREATE TABLE IF NOT EXISTS rollup_state (
  name             text PRIMARY KEY,
  bucket_width     interval    NOT NULL,
  watermark        timestamptz,
  last_refresh_at  timestamptz,
  last_duration_ms double precision,
  refreshes        bigint      NOT NULL DEFAULT 0
);
INSERT INTO rollup_state (name, bucket_width) VALUES
  ('device_1m', '1 minute'), ('household_5m', '5 minutes'), ('device_1h', '1 hour')
ON CONFLICT (name) DO NOTHING;

-- Invalidation log: every write statement on telemetry records the [lo, hi] time range it
-- touched, once per rollup, in the same transaction as the data (so the log entry commits
-- exactly when the data does: no threshold race). A refresh consumes its rollup's entries.
CREATE TABLE IF NOT EXISTS rollup_invalidations (
  rollup    text        NOT NULL,
  lo        timestamptz NOT NULL,
  hi        timestamptz NOT NULL,
  logged_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS rollup_invalidations_idx ON rollup_invalidations (rollup, lo);

CREATE OR REPLACE FUNCTION joule_log_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM new_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION joule_log_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM old_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL;
  RETURN NULL;
END $$;

-- An UPDATE invalidates both the old and the new time of every row it touched.
CREATE OR REPLACE FUNCTION joule_log_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rollup_invalidations (rollup, lo, hi)
  SELECT s.name, m.lo, m.hi
    FROM (SELECT min(ts) AS lo, max(ts) AS hi FROM old_rows
          UNION ALL
          SELECT min(ts), max(ts) FROM new_rows) m, rollup_state s
   WHERE m.lo IS NOT NULL;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS telemetry_log_insert ON telemetry;
CREATE TRIGGER telemetry_log_insert AFTER INSERT ON telemetry
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_new_rows();
DROP TRIGGER IF EXISTS telemetry_log_delete ON telemetry;
CREATE TRIGGER telemetry_log_delete AFTER DELETE ON telemetry
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION joule_log_old_rows();
DROP TRIGGER IF EXISTS telemetry_log_update ON telemetry;
CREATE TRIGGER telemetry_log_update AFTER UPDATE ON telemetry
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION joule_log_changed_rows();

-- Read views with the design document's names and columns. They are real-time: materialised
-- buckets below the watermark plus a GROUP BY over the raw tail above it.
CREATE OR REPLACE VIEW ca_device_1m AS
  SELECT r.bucket, r.device_id, r.energy_wh_sum,
         r.power_w_sum / NULLIF(r.power_w_count, 0) AS power_w_avg, r.power_w_max
    FROM rollup_device_1m r
   WHERE r.bucket < COALESCE((SELECT watermark FROM rollup_state WHERE name = 'device_1m'), '-infinity')
  UNION ALL
  SELECT date_bin('1 minute', t.ts, '2000-01-01 00:00:00+00'), t.device_id, sum(t.energy_wh),
         avg(t.power_w), max(t.power_w)
    FROM telemetry t
   WHERE t.ts >= COALESCE((SELECT watermark FROM rollup_state WHERE name = 'device_1m'), '-infinity')
   GROUP BY 1, 2;

CREATE OR REPLACE VIEW ca_household_5m AS
  SELECT r.bucket, r.household_id, r.energy_wh_sum,
         r.power_w_sum / NULLIF(r.power_w_count, 0) AS power_w_avg
    FROM rollup_household_5m r
   WHERE r.bucket < COALESCE((SELECT watermark FROM rollup_state WHERE name = 'household_5m'), '-infinity')
  UNION ALL
  SELECT date_bin('5 minutes', t.ts, '2000-01-01 00:00:00+00'), t.household_id, sum(t.energy_wh),
         avg(t.power_w)
    FROM telemetry t
   WHERE t.ts >= COALESCE((SELECT watermark FROM rollup_state WHERE name = 'household_5m'), '-infinity')
   GROUP BY 1, 2;

CREATE OR REPLACE VIEW ca_device_1h AS
  SELECT r.bucket, r.device_id, r.energy_wh_sum
    FROM rollup_device_1h r
   WHERE r.bucket < COALESCE((SELECT watermark FROM rollup_state WHERE name = 'device_1h'), '-infinity')
  UNION ALL
  SELECT date_bin('1 hour', t.ts, '2000-01-01 00:00:00+00'), t.device_id, sum(t.energy_wh)
    FROM telemetry t
   WHERE t.ts >= COALESCE((SELECT watermark FROM rollup_state WHERE name = 'device_1h'), '-infinity')
   GROUP BY 1, 2;
