-- Signing out of the console also signs the person out at the identity provider
-- (OpenID Connect RP-Initiated Logout), which wants the ID token it issued as
-- `id_token_hint` (Okta refuses the request without it). The token is a signed statement
-- about the person addressed to rosterd's client: rosterd does not accept it as a
-- credential, and it is deleted with its session.
ALTER TABLE console_sessions ADD COLUMN id_token TEXT;
