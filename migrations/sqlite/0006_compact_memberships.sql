-- Membership state in proportion to groups and runs, not memberships (rosterd::store::members).
-- Keep in step with migrations/postgres.
--
-- The rows of `memberships` and `membership_changes` are carried into these tables by
-- rosterd itself when it opens the database (store::carry), in one transaction with
-- dropping the old tables: a roaring set cannot be made in SQL.

-- Every worker ever seen, numbered once: the sets below hold these ids.
CREATE TABLE workers (
    id INTEGER PRIMARY KEY,
    worker_key TEXT NOT NULL UNIQUE
);

-- The audit, and the state: per run and group that changed, the workers added and removed
-- (roaring sets of worker ids), each direction's most common reason, and the changes whose
-- reason differs from it (JSON [[id, reason], ...]). Never pruned.
CREATE TABLE group_changes (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    group_name TEXT NOT NULL,
    added_count INTEGER NOT NULL,
    removed_count INTEGER NOT NULL,
    added BLOB NOT NULL,
    removed BLOB NOT NULL,
    added_reason TEXT NOT NULL,
    removed_reason TEXT NOT NULL,
    reasons TEXT NOT NULL,
    -- the group's size after the run
    member_count INTEGER NOT NULL,
    PRIMARY KEY (group_name, run_id)
);
CREATE INDEX group_changes_run ON group_changes (run_id);

-- A group's members as of a run, so that reading the state folds in only the changes since:
-- per run, the members it added who were still members ((run id, length, roaring set)...),
-- and the members whose reason is not `rule` (JSON [[id, reason], ...]).
CREATE TABLE group_checkpoints (
    group_name TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    member_count INTEGER NOT NULL,
    members BLOB NOT NULL,
    reasons TEXT NOT NULL
);
