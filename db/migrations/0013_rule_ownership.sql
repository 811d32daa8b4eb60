-- Owned work (issue 11): several instances on one database share the alert rules. Each rule
-- is evaluated by exactly one live instance; rule changes reach every instance at once.

-- Live instances: a row per running Joule process, renewed by its heartbeat. An instance is
-- live while expires_at > now() (database clock: instances never compare their own clocks).
CREATE TABLE IF NOT EXISTS alert_instances (
  id           text        PRIMARY KEY,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

-- Which instance evaluates a rule. The lease is valid while its owner is live, so a
-- heartbeat renews every lease of an instance with one row write (not one per rule). A new
-- owner takes a rule only when the row is absent (released) or its owner expired; the old
-- owner stops evaluating before its own expiry (it fences itself on a missed heartbeat).
CREATE TABLE IF NOT EXISTS alert_rule_leases (
  rule_id     uuid        PRIMARY KEY REFERENCES alert_rules (id) ON DELETE CASCADE,
  owner       text        NOT NULL REFERENCES alert_instances (id) ON DELETE CASCADE,
  acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_rule_leases_owner_idx ON alert_rule_leases (owner);

-- Every rule change (API, plain SQL, another version of Joule) is announced with the rule id;
-- each instance LISTENs and re-reads the rule. Lost notifications (while disconnected) are
-- covered by a periodic full compare of versions.
CREATE OR REPLACE FUNCTION joule_notify_rule_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('joule_rule_changes', OLD.id::text);
  ELSE
    PERFORM pg_notify('joule_rule_changes', NEW.id::text);
  END IF;
  RETURN NULL;
END;
$$;

-- Instances apply a change only when the rule's version grew (a stale read must never undo a
-- newer one), so every update bumps it, also a plain SQL one that does not say so (the API
-- bumps it itself: then this changes nothing).
CREATE OR REPLACE FUNCTION joule_bump_rule_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version <= OLD.version THEN
    NEW.version := OLD.version + 1;
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS alert_rules_version ON alert_rules;
CREATE TRIGGER alert_rules_version BEFORE UPDATE ON alert_rules
  FOR EACH ROW EXECUTE FUNCTION joule_bump_rule_version();

DROP TRIGGER IF EXISTS alert_rules_notify ON alert_rules;
CREATE TRIGGER alert_rules_notify AFTER INSERT OR UPDATE OR DELETE ON alert_rules
  FOR EACH ROW EXECUTE FUNCTION joule_notify_rule_change();
