-- Every decision about a person's access to a group by hand (a granted or denied request,
-- an access review's keep or remove), with who decided, why, and the commit it landed as:
-- what auditors ask for, per group and period. Appended only.
CREATE TABLE access_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    decided_at TEXT NOT NULL,
    -- grant, deny, keep, remove
    decision TEXT NOT NULL,
    group_name TEXT NOT NULL,
    -- include or members
    list_name TEXT NOT NULL,
    -- The entry's worker as the decision named them (a key or an email).
    worker TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    -- The entry's last day after the decision, when it has one.
    until_date TEXT,
    -- The request a grant or denial answered.
    request TEXT,
    branch TEXT,
    commit_sha TEXT,
    -- 1 when it went to the branch the daemon reads, 0 for a branch for review
    direct_commit INTEGER NOT NULL,
    link TEXT
);
CREATE INDEX access_decisions_by_group ON access_decisions (group_name, decided_at);
CREATE INDEX access_decisions_by_time ON access_decisions (decided_at);
