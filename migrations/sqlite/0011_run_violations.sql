-- The guardrails a run's evaluation broke, as JSON (a list of violations; `[]` when none),
-- for the runs that evaluated. A push holds the groups of the latest such run's violations
-- that hold; `rosterd status`, the metrics and the admin API show them.
ALTER TABLE runs ADD COLUMN violations TEXT;
