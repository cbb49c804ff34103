-- Verification: rosterd reports what a target was read back to hold, never what it sent.
--
-- Each pushed group records when it was last read back entry by entry (`verified_at`),
-- how many differences that read found (`verified_drift`), and where that left it
-- (`verify_state`: `matched`, `drifted` until the repair is confirmed, `repaired`). A group
-- never read back has no `verified_at` and is shown as unverified.
ALTER TABLE target_groups ADD COLUMN verified_at TEXT;
ALTER TABLE target_groups ADD COLUMN verified_drift INTEGER;
ALTER TABLE target_groups ADD COLUMN verify_state TEXT;
-- What a drift record found beyond a member: the name a group was renamed to by hand.
ALTER TABLE push_drift ADD COLUMN detail TEXT;
-- Per target: how many users its last full listing held, so that a listing with far fewer
-- (a target restored or reset) is noticed; and the last sign of such a reset, which made
-- rosterd verify the whole target.
CREATE TABLE target_verification (
    target TEXT PRIMARY KEY,
    users_listed BIGINT,
    listed_at TEXT,
    reset_at TEXT,
    reset_reason TEXT
);
