-- Push state: what rosterd knows of each target, the outbox of changes on their way, holds,
-- drift found by reconciles. Keep in step with migrations/postgres.

-- The target group each (target, group) pair is pushed to.
CREATE TABLE target_groups (
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    scim_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- 1 when linked to a group rosterd did not create; such a group is never deleted
    linked INTEGER NOT NULL DEFAULT 0,
    pushed_at TEXT,
    reconciled_at TEXT,
    PRIMARY KEY (target, group_name)
);

-- The members the target confirmed, as far as rosterd knows (read back by a reconcile).
CREATE TABLE target_members (
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- NULL for a member rosterd does not know (added by hand in the target)
    worker_key TEXT,
    PRIMARY KEY (target, group_name, user_id)
);

-- Resolved target users, cached; user_id NULL: the target has no account for the worker.
CREATE TABLE target_users (
    target TEXT NOT NULL,
    worker_key TEXT NOT NULL,
    match_value TEXT NOT NULL,
    user_id TEXT,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (target, worker_key)
);

-- Members of a pushed group who have no account in the target.
CREATE TABLE push_unprovisioned (
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    worker_key TEXT NOT NULL,
    -- the value looked up, or NULL when the worker has none
    match_value TEXT,
    since TEXT NOT NULL,
    PRIMARY KEY (target, group_name, worker_key)
);

-- Every change on its way to a target, written before it is sent.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    -- create | add | remove | rename | delete
    action TEXT NOT NULL,
    -- JSON: {"display_name": ..., "members": [{"user_id": ..., "worker_key": ...}]}
    payload TEXT NOT NULL,
    -- pending | done | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    scim_type TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX outbox_status ON outbox (status, target);

-- Pushes the failsafe stopped.
CREATE TABLE push_holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    to_add INTEGER NOT NULL,
    to_remove INTEGER NOT NULL,
    members_in_target INTEGER NOT NULL,
    -- held | approved | released | superseded
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    approved_at TEXT
);
CREATE INDEX push_holds_pair ON push_holds (target, group_name, status);

-- Whether a target accepts our credentials.
CREATE TABLE target_health (
    target TEXT PRIMARY KEY,
    healthy INTEGER NOT NULL,
    reason TEXT,
    since TEXT NOT NULL
);

-- What a reconcile found changed in a target behind rosterd's back.
CREATE TABLE push_drift (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    -- extra (in the target, not known) | missing (known, not in the target) | group_missing
    kind TEXT NOT NULL,
    user_id TEXT,
    worker_key TEXT,
    found_at TEXT NOT NULL
);
CREATE INDEX push_drift_pair ON push_drift (target, group_name);
