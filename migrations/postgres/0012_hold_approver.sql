-- Who released a push hold: `cli:USER` for `rosterd approve push` (the operating-system user),
-- `api` for the admin API's bearer token, and the person's identity once the console signs
-- people in. NULL for holds approved before this column existed, and for those not approved.
ALTER TABLE push_holds ADD COLUMN approved_by TEXT;
