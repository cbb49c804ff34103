-- A run remembers the digest of everything its evaluation read besides the export: the rule
-- files, the config file and the evaluation date. A later run with the same export and the
-- same digest has nothing to evaluate (rosterd::cycle), and records itself as such.
ALTER TABLE runs ADD COLUMN inputs_digest TEXT;
