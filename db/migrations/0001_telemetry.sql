-- Raw telemetry, exactly the design document's table, range-partitioned by day on ts.
-- Partitions are created ahead of time by the server (db/partitions.cpp); rows outside
-- every partition land in telemetry_default and are moved when their partition is made.
CREATE TABLE IF NOT EXISTS telemetry (
  ts           timestamptz      NOT NULL,
  device_id    uuid             NOT NULL,
  household_id uuid             NOT NULL,
  power_w      double precision,
  energy_wh    double precision
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS telemetry_default PARTITION OF telemetry DEFAULT;

-- The design document asks for (ts, device_id) and household_id.
CREATE INDEX IF NOT EXISTS telemetry_ts_device_idx ON telemetry (ts, device_id);
CREATE INDEX IF NOT EXISTS telemetry_household_ts_idx ON telemetry (household_id, ts);

CREATE TABLE IF NOT EXISTS devices (
  id           uuid PRIMARY KEY,
  household_id uuid NOT NULL,
  name         text,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS devices_household_idx ON devices (household_id);
