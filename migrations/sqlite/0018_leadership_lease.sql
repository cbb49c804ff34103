-- The leader's lease (PostgreSQL, several daemons): the leader renews `renewed_at` (the
-- server's clock, in seconds since 1970) on its lock session every `leader_poll_seconds`. A
-- standby that finds it older than `leader_lease_polls` polls ends the session `lock_pid`
-- (which holds the advisory lock) and takes over, so that a leader that hangs (stopped,
-- starved, swapping) is replaced, not waited for. Kept apart from `leadership`, whose row a
-- run's write transactions share-lock: a renewal never waits on a commit.
CREATE TABLE leadership_lease (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    lock_pid INTEGER NOT NULL,
    renewed_at REAL NOT NULL
);
