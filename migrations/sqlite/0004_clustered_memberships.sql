-- The two tables that hold a row per membership (20M at 100k workers x 2,000 groups) become
-- WITHOUT ROWID: the table is then its primary key's b-tree, instead of a rowid b-tree plus
-- an index repeating every key. Half the writes and about a third less disk. PostgreSQL has
-- no rowid; its migration 0004 is empty.

CREATE TABLE memberships_clustered (
    group_name TEXT NOT NULL,
    worker_key TEXT NOT NULL,
    -- rule | include | member
    reason TEXT NOT NULL,
    since_run INTEGER NOT NULL,
    PRIMARY KEY (group_name, worker_key)
) WITHOUT ROWID;
INSERT INTO memberships_clustered (group_name, worker_key, reason, since_run)
    SELECT group_name, worker_key, reason, since_run FROM memberships;
DROP TABLE memberships;
ALTER TABLE memberships_clustered RENAME TO memberships;
-- The admin API's /api/v1/workers/{key}/groups looks a worker's memberships up by key.
CREATE INDEX memberships_worker ON memberships (worker_key);

CREATE TABLE target_members_clustered (
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- NULL for a member rosterd does not know (added by hand in the target)
    worker_key TEXT,
    PRIMARY KEY (target, group_name, user_id)
) WITHOUT ROWID;
INSERT INTO target_members_clustered (target, group_name, user_id, worker_key)
    SELECT target, group_name, user_id, worker_key FROM target_members;
DROP TABLE target_members;
ALTER TABLE target_members_clustered RENAME TO target_members;
