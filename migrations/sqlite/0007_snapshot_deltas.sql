-- A snapshot is stored whole every so often, and otherwise as its difference from the
-- snapshot before it (`previous_id`): `snapshot_workers` then holds only the workers who
-- joined or changed, and `snapshot_changes` names those who left. `depth` counts the
-- differences since the last snapshot stored whole (0: this one is). Existing snapshots are
-- all whole. `pruned_at`: when retention removed the snapshot's workers (its row stays, for
-- the runs that name it). Keep in step with migrations/postgres.
ALTER TABLE snapshots ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN pruned_at TEXT;
