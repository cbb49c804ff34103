-- The web console's sign-ins. A session is found by the SHA-256 of its cookie, so the
-- database never holds a value that would let its reader act as someone. A login is the
-- state of one sign-in in flight (the PKCE verifier and the nonce until the provider sends
-- the browser back), kept in the store so that any instance behind a load balancer can
-- finish it.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    email TEXT,
    name TEXT,
    -- The groups claim of the ID token, a JSON array.
    claim_groups TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE console_logins (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
