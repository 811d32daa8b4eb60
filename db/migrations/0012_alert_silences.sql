-- Silences (issue 10): while one matches, notifications are stored as history
-- (delivery = 'silenced') and sent nowhere; an alert still firing when it ends is notified once.

CREATE TABLE IF NOT EXISTS alert_silences (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Exact matches on rule_id, scope_id, household_id and rule labels: silenced when every
  -- pair is among the alert's labels (jsonb containment).
  matchers         jsonb       NOT NULL,
  starts_at        timestamptz NOT NULL,
  ends_at          timestamptz NOT NULL,
  comment          text        NOT NULL DEFAULT '',
  owner_households uuid[]      NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS alert_silences_ends_idx ON alert_silences (ends_at);

-- The open firing's latest notification was silenced: notify once when no silence matches
-- any more (cleared by that notification or when the incident resolves).
ALTER TABLE alert_rule_state ADD COLUMN IF NOT EXISTS silenced_pending boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS alert_rule_state_silenced_idx ON alert_rule_state (rule_id) WHERE silenced_pending;
