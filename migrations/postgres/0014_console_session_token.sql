-- What a console session keeps of the ID token beyond who the person is.
--
-- Signing out of the console also signs the person out at the identity provider
-- (OpenID Connect RP-Initiated Logout), which wants the ID token it issued as
-- `id_token_hint` (Okta refuses the request without it). The token is a signed statement
-- about the person addressed to rosterd's client: rosterd does not accept it as a
-- credential, and it is deleted with its session.
ALTER TABLE console_sessions ADD COLUMN id_token TEXT;
-- 1 when the provider left the groups claim out of the token and pointed elsewhere for it
-- (a distributed claim: Microsoft Entra ID does this past 200 groups, its "overage"), so
-- that the console can tell the person why no `claim:` role matched.
ALTER TABLE console_sessions ADD COLUMN groups_elsewhere BIGINT NOT NULL DEFAULT 0;
