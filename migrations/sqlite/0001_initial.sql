-- rosterd's state: HR snapshots, runs, current memberships and their audit.
-- Timestamps are RFC 3339 text in UTC; dates are YYYY-MM-DD text. Keep in step with
-- migrations/postgres.

CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    checksum TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    worker_count INTEGER NOT NULL,
    eligible_count INTEGER NOT NULL,
    issue_count INTEGER NOT NULL,
    -- current | superseded | held | approved
    status TEXT NOT NULL,
    hold_reason TEXT,
    approved_at TEXT,
    previous_id INTEGER
);
CREATE INDEX snapshots_checksum ON snapshots (checksum);
CREATE INDEX snapshots_status ON snapshots (status);

CREATE TABLE snapshot_workers (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    worker_key TEXT NOT NULL,
    -- JSON object: attribute name -> value; missing values are left out
    attributes TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, worker_key)
);

CREATE TABLE snapshot_changes (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    worker_key TEXT NOT NULL,
    -- joined | left | changed
    change TEXT NOT NULL,
    attribute TEXT,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX snapshot_changes_snapshot ON snapshot_changes (snapshot_id);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    -- succeeded | held | failed
    status TEXT NOT NULL,
    as_of TEXT NOT NULL,
    snapshot_id INTEGER,
    rules_commit TEXT,
    rules_digest TEXT,
    group_count INTEGER NOT NULL DEFAULT 0,
    membership_count INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    message TEXT
);

CREATE TABLE memberships (
    group_name TEXT NOT NULL,
    worker_key TEXT NOT NULL,
    -- rule | include | member
    reason TEXT NOT NULL,
    since_run INTEGER NOT NULL,
    PRIMARY KEY (group_name, worker_key)
);

CREATE TABLE membership_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    group_name TEXT NOT NULL,
    worker_key TEXT NOT NULL,
    -- added | removed
    action TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX membership_changes_group ON membership_changes (group_name, worker_key);
CREATE INDEX membership_changes_run ON membership_changes (run_id);
