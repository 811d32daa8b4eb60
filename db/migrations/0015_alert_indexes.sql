-- Issue 10 review: indexes the alert housekeeping needs at 100,000 rules.

-- Retention keeps the first notification of every incident still firing
-- (NOT EXISTS ... s.incident_id = n.alert_id AND s.phase = 'firing'): without an index each
-- candidate row scanned the whole state table.
CREATE INDEX IF NOT EXISTS alert_rule_state_firing_incident_idx
  ON alert_rule_state (incident_id) WHERE phase = 'firing';

-- Silence checks (every notification, every release check, every Alertmanager re-post) ask
-- for the silences active now: those that have started and not ended. Ended silences stay for
-- alerts.retention, so the active ones are found by ends_at first, then starts_at.
CREATE INDEX IF NOT EXISTS alert_silences_active_idx ON alert_silences (ends_at, starts_at);
