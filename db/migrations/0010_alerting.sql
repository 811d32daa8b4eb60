-- Alerting an operator can trust (issue 10): silent devices (silence_sec), the no_data
-- policy of threshold rules, repeat notifications, rule names and labels.

-- silence_sec is observed from the scope's newest reading and has no window; such rules
-- store window_minutes = 1, which nothing reads.
ALTER TABLE alert_rules DROP CONSTRAINT IF EXISTS alert_rules_metric_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_metric_check
  CHECK (metric IN ('power_w_avg', 'power_w_max', 'energy_wh_sum', 'silence_sec'));

ALTER TABLE alert_rules
  ADD COLUMN IF NOT EXISTS no_data text NOT NULL DEFAULT 'keep'
    CHECK (no_data IN ('keep', 'resolve', 'alerting')),
  ADD COLUMN IF NOT EXISTS repeat_interval_sec integer NOT NULL DEFAULT 0
    CHECK (repeat_interval_sec >= 0),
  ADD COLUMN IF NOT EXISTS name text,
  ADD COLUMN IF NOT EXISTS labels jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The open firing's latest notification and how many repeats it had: a restart keeps the
-- repeat rhythm instead of repeating at once or never.
ALTER TABLE alert_rule_state
  ADD COLUMN IF NOT EXISTS last_notified_at timestamptz,
  ADD COLUMN IF NOT EXISTS repeats integer NOT NULL DEFAULT 0;
