-- What each target confirmed per group, in proportion to groups, not memberships
-- (rosterd::store::push::Confirmed). Keep in step with migrations/postgres.
--
-- The rows of `target_members` are carried into this table by rosterd itself when it opens
-- the database (store::carry), in one transaction with dropping the old table.

CREATE TABLE target_member_sets (
    target TEXT NOT NULL,
    group_name TEXT NOT NULL,
    -- roaring set of worker ids (table workers) whose user, as target_users caches it, the
    -- target holds in the group
    members BLOB NOT NULL,
    -- every other entry the target holds: JSON [[user_id, worker_key or null], ...], such as
    -- a member added by hand, or a user id a worker had before the target re-created them
    foreign_members TEXT NOT NULL,
    member_count INTEGER NOT NULL,
    PRIMARY KEY (target, group_name)
);
