-- Snapshots, compactly. Keep in step with migrations/sqlite.
--
-- A snapshot is stored whole every so often, and otherwise as its difference from the
-- snapshot before it (`previous_id`): its rows are then only the workers who joined or
-- changed, and `snapshot_changes` names those who left. `depth` counts the differences
-- since the last snapshot stored whole (0: this one is). Existing snapshots are all whole.
-- `pruned_at`: when retention removed the snapshot's workers (its row stays, for the runs
-- that name it).
ALTER TABLE snapshots ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN pruned_at TEXT;

-- A snapshot's workers as text, in chunks of up to 10,000: one line per worker, its key, a
-- tab, and its attributes as a JSON object. Keys hold no control characters (the loader
-- rejects them) and compact JSON holds no raw newline, so the lines split exactly. Read
-- and written as a few rows per snapshot instead of one per worker.
CREATE TABLE snapshot_rows (
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    chunk BIGINT NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, chunk)
);
INSERT INTO snapshot_rows (snapshot_id, chunk, rows)
    SELECT snapshot_id, 0, string_agg(worker_key || chr(9) || attributes || chr(10), '')
    FROM snapshot_workers GROUP BY snapshot_id;
DROP TABLE snapshot_workers;
