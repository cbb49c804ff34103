// The OpenID provider rosterd's console tests sign in against: `oidc-provider` (the
// certified implementation, pinned in package.json) with one confidential client that must
// use PKCE, and the users given in a JSON file. Its own development login form is the
// sign-in page: any password is taken, the login is the account.
//
//   node provider.mjs --port 28090 --redirect http://127.0.0.1:9464/auth/callback \
//        [--redirect ANOTHER ...]   (one per console the client may return to) \
//        [--users users.json] [--client-secret SECRET]
//
// users.json: {"ada": {"email": "ada@example.com", "name": "Ada", "groups": ["corpsec"]}, ...}
// ("email_verified": false marks an address the provider has not verified, null leaves the
// claim out, and any other value is sent as given, "true" or "yes" as text; "groups_elsewhere":
// true leaves the groups out of the token and points elsewhere for them, a distributed claim,
// as Microsoft Entra ID does for a person in more than 200 groups; "iat_ahead": N says the
// token was issued N seconds from now, as a provider whose clock runs fast would).
// Prints `listening ISSUER` on stdout once it answers.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1 || i + 1 >= process.argv.length) {
    if (fallback === undefined) {
      console.error(`provider.mjs: --${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return process.argv[i + 1];
}

const port = Number(arg('port'));
const redirects = process.argv
  .flatMap((a, i) => (a === '--redirect' && i + 1 < process.argv.length ? [process.argv[i + 1]] : []));
if (redirects.length === 0) {
  console.error('provider.mjs: --redirect is required');
  process.exit(2);
}
const usersFile = arg('users', '');
const clientSecret = arg('client-secret', 'rosterd-test-secret');
const users = usersFile
  ? JSON.parse(readFileSync(usersFile, 'utf8'))
  : {
    approver: { email: 'approver@example.com', name: 'Ada Approver', groups: ['rosterd-approvers'] },
    viewer: { email: 'viewer@example.com', name: 'Vic Viewer', groups: ['it-support'] },
  };
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'rosterd-console',
    client_secret: clientSecret,
    redirect_uris: redirects,
    // The console's signed-out page, where the provider sends the browser after its own
    // sign-out (RP-Initiated Logout).
    post_logout_redirect_uris: redirects.map((r) => r.replace(/\/auth\/callback$/, '/auth/signed-out')),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  // Scope claims in the ID token, as Okta and Entra ID put the groups claim there.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'iat'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['rosterd-test-provider-cookie-key'] },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, IdToken: 600, AccessToken: 600, AuthorizationCode: 60 },
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, email: user.email, name: user.name };
        const verified = 'email_verified' in user ? user.email_verified : true;
        if (verified !== null) claims.email_verified = verified;
        if (user.iat_ahead) claims.iat = Math.floor(Date.now() / 1000) + user.iat_ahead;
        if (user.groups_elsewhere) {
          claims._claim_names = { groups: 'src1' };
          claims._claim_sources = { src1: { endpoint: `${issuer}/groups-of/${id}` } };
        } else {
          claims.groups = user.groups ?? [];
        }
        return claims;
      },
    };
  },
});
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
