-- Receivers and grouping (issue 10): named receivers (signed webhook or Alertmanager) that
-- rules route to, and the outbox rows grouped per receiver and group key.

CREATE TABLE IF NOT EXISTS alert_receivers (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name               text        NOT NULL,
  kind               text        NOT NULL CHECK (kind IN ('webhook', 'alertmanager')),
  url                text        NOT NULL,
  secret             text        NOT NULL DEFAULT '',
  group_by           text[]      NOT NULL DEFAULT '{}',
  group_wait_sec     integer     NOT NULL DEFAULT 0 CHECK (group_wait_sec >= 0),
  group_interval_sec integer     NOT NULL DEFAULT 60 CHECK (group_interval_sec >= 0),
  -- The households of the token that created it (empty: an unrestricted token). A
  -- household-restricted token sees only receivers owned by its own households.
  owner_households   uuid[]      NOT NULL DEFAULT '{}',
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A rule names a receiver, or keeps its own webhook_url/webhook_secret (a private receiver).
-- A receiver in use cannot be deleted (NO ACTION: 409 receiver_in_use).
ALTER TABLE alert_rules ADD COLUMN IF NOT EXISTS receiver_id uuid REFERENCES alert_receivers (id);
CREATE INDEX IF NOT EXISTS alert_rules_receiver_idx ON alert_rules (receiver_id);

-- Rows for a named receiver are delivered in groups: every pending row of one
-- (receiver_id, group_key) shares its group's flush time (next_attempt_at) and goes out in
-- one POST.
ALTER TABLE alert_notifications
  ADD COLUMN IF NOT EXISTS receiver_id uuid,
  ADD COLUMN IF NOT EXISTS group_key text;
CREATE INDEX IF NOT EXISTS alert_notifications_group_idx
  ON alert_notifications (receiver_id, group_key) WHERE delivery = 'pending';

-- When each group flushes next (NULL: nothing waiting) and when it last did: group_wait for
-- a new group, group_interval between a group's flushes.
CREATE TABLE IF NOT EXISTS alert_groups (
  receiver_id   uuid        NOT NULL REFERENCES alert_receivers (id) ON DELETE CASCADE,
  group_key     text        NOT NULL,
  flush_at      timestamptz,
  last_flush_at timestamptz,
  PRIMARY KEY (receiver_id, group_key)
);

-- A notification produced while a silence matched it is history only: 'silenced' rows are
-- shown by /alerts/events and never delivered.
ALTER TABLE alert_notifications DROP CONSTRAINT IF EXISTS alert_notifications_delivery_check;
ALTER TABLE alert_notifications ADD CONSTRAINT alert_notifications_delivery_check
  CHECK (delivery IN ('pending', 'delivered', 'failed', 'silenced'));
