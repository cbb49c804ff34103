-- How a target's filters compare the attribute workers are matched by, as rosterd learned it
-- with `lookup: auto`: from the target's /Schemas (caseExact), or by probing once with a
-- known user's value in another case. A target whose filters compare case-sensitively has
-- its users listed instead of filtered, so that case differences never hide an account.
CREATE TABLE target_lookup (
    target TEXT PRIMARY KEY,
    attribute TEXT NOT NULL,
    case_exact INTEGER NOT NULL,
    source TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
