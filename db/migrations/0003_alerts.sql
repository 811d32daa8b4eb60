-- Alerts: rules, per-rule evaluation state, and notifications (history + durable outbox).

CREATE TABLE IF NOT EXISTS alert_rules (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scope          text             NOT NULL CHECK (scope IN ('device', 'household')),
  scope_id       uuid             NOT NULL,
  metric         text             NOT NULL CHECK (metric IN ('power_w_avg', 'power_w_max', 'energy_wh_sum')),
  window_minutes integer          NOT NULL CHECK (window_minutes IN (1, 5)),
  op             text             NOT NULL CHECK (op IN ('>', '>=', '<', '<=')),
  threshold      double precision NOT NULL,
  recover_value  double precision,
  cooldown_sec   integer          NOT NULL DEFAULT 300 CHECK (cooldown_sec >= 0),
  for_buckets    integer          NOT NULL DEFAULT 1 CHECK (for_buckets >= 1),
  webhook_url    text             NOT NULL,
  webhook_secret text             NOT NULL,
  enabled        boolean          NOT NULL DEFAULT true,
  -- Bumped by every update: live changes reach the evaluators in version order.
  version        bigint           NOT NULL DEFAULT 1,
  created_at     timestamptz      NOT NULL DEFAULT now(),
  updated_at     timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_rules_created_idx ON alert_rules (created_at, id);

-- What each evaluator remembers, so a restart neither re-fires inside a cooldown nor
-- forgets a firing alert. `seq` is an optimistic-concurrency version: a save names the seq
-- it started from and loses if another writer (a second instance) got there first.
CREATE TABLE IF NOT EXISTS alert_rule_state (
  rule_id        uuid PRIMARY KEY REFERENCES alert_rules (id) ON DELETE CASCADE,
  phase          text        NOT NULL DEFAULT 'ok' CHECK (phase IN ('ok', 'pending', 'firing', 'resolved')),
  breaches       integer     NOT NULL DEFAULT 0,
  last_bucket    timestamptz,
  cooldown_until timestamptz,
  incident_id    uuid,
  fired_at       timestamptz,
  seq            bigint      NOT NULL DEFAULT 0,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per firing/resolved notification: the event history and the delivery outbox at
-- once. Written in the same transaction as the state change. Delivery workers claim due rows
-- with FOR UPDATE SKIP LOCKED and a lease (lease_until); a crashed worker's lease runs out
-- and the row is claimed again (at-least-once, same alert_id). No foreign key to the rule:
-- history outlives a deleted rule, and url/secret are copied so delivery never needs it.
CREATE TABLE IF NOT EXISTS alert_notifications (
  alert_id        uuid PRIMARY KEY,
  incident_id     uuid             NOT NULL,
  rule_id         uuid             NOT NULL,
  status          text             NOT NULL CHECK (status IN ('firing', 'resolved')),
  bucket          timestamptz      NOT NULL,
  observed        double precision NOT NULL,
  payload         text             NOT NULL,
  webhook_url     text             NOT NULL,
  webhook_secret  text             NOT NULL,
  destination     text             NOT NULL,
  created_at      timestamptz      NOT NULL DEFAULT now(),
  delivery        text             NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'delivered', 'failed')),
  attempts        integer          NOT NULL DEFAULT 0,
  next_attempt_at timestamptz      NOT NULL DEFAULT now(),
  lease_until     timestamptz,
  last_status     integer,
  last_error      text,
  delivered_at    timestamptz
);
CREATE INDEX IF NOT EXISTS alert_notifications_due_idx
  ON alert_notifications (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX IF NOT EXISTS alert_notifications_rule_idx ON alert_notifications (rule_id, created_at);
CREATE INDEX IF NOT EXISTS alert_notifications_created_idx ON alert_notifications (created_at);
