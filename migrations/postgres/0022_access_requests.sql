-- Access requests made in the console: who asked for whom to join which group, until when
-- and why; the state the request is in, and the commit an approval landed as. Every change
-- of state is appended to access_request_events, with who made it.
CREATE TABLE access_requests (
    id BIGSERIAL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- pending, approved, denied, withdrawn, merged, in_force, expired
    state TEXT NOT NULL,
    group_name TEXT NOT NULL,
    -- include (hybrid group) or members (manual group)
    list_name TEXT NOT NULL,
    -- The worker who would join: their key, and email and name as the export had them.
    worker TEXT NOT NULL,
    worker_email TEXT,
    worker_name TEXT,
    -- The signed-in person who asked: `oidc:SUBJECT (EMAIL)`, their subject and email.
    requested_by TEXT NOT NULL,
    requester_subject TEXT NOT NULL,
    requester_email TEXT,
    justification TEXT NOT NULL,
    -- The last day of the access asked for (YYYY-MM-DD).
    until_date TEXT NOT NULL,
    -- An approval being written to the rules repository: by whom, since when.
    deciding_by TEXT,
    deciding_since TEXT,
    decided_by TEXT,
    decided_at TEXT,
    comment TEXT,
    branch TEXT,
    commit_sha TEXT,
    direct_commit BIGINT NOT NULL DEFAULT 0,
    link TEXT
);
CREATE INDEX access_requests_by_state ON access_requests (state, id);
CREATE INDEX access_requests_by_requester ON access_requests (requester_subject, id);
CREATE TABLE access_request_events (
    id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES access_requests (id),
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX access_request_events_by_request ON access_request_events (request_id, id);
-- Notices the daemon sends once a day (the reviews due), by the day they were sent: of
-- several daemons and restarts, the first to claim the day sends it.
CREATE TABLE daily_notices (
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (kind, day)
);
