// Okta's own Node.js SDK drives rosterd's Okta emulator through every call rosterd makes
// (tests/okta.rs runs it): a difference between what the SDK sends or expects and what the
// emulator does fails here. Usage: node check.mjs ORG_URL API_TOKEN LOGIN1 LOGIN2 LOGIN3
import assert from 'node:assert/strict';
import okta from '@okta/okta-sdk-nodejs';

const [orgUrl, token, ...logins] = process.argv.slice(2);
assert.equal(logins.length, 3, 'three logins of users the tenant has');
// No cache: every call must reach the emulator.
const client = new okta.Client({ orgUrl, token, cacheMiddleware: null });
const done = (step) => console.log(`ok ${step}`);

async function all(collection) {
  const out = [];
  await collection.each((item) => { out.push(item); });
  return out;
}

async function refused(call, status, code) {
  try {
    await call();
  } catch (e) {
    assert.equal(e.status, status, `${e}`);
    assert.equal(e.errorCode, code, `${e}`);
    return;
  }
  assert.fail(`expected HTTP ${status} ${code}`);
}

// Users: by search on the login (any case), and every one by pages of two.
const users = [];
for (const login of logins) {
  const found = await all(await client.userApi.listUsers({ search: `profile.login eq "${login.toUpperCase()}"` }));
  assert.equal(found.length, 1, `one user for ${login}`);
  assert.equal(found[0].profile.login.toLowerCase(), login.toLowerCase());
  assert.equal(found[0].status, 'ACTIVE');
  users.push(found[0]);
}
done('users found by login');
const everyone = await all(await client.userApi.listUsers({ limit: 2 }));
assert.ok(everyone.length >= 3, `listed ${everyone.length} users in pages of two`);
assert.equal(new Set(everyone.map((u) => u.id)).size, everyone.length, 'no user listed twice');
done('users listed in pages');
const byId = await client.userApi.getUser({ userId: users[0].id });
assert.equal(byId.id, users[0].id);
done('user by id');

// A group: made, found by its exact name, filled, read in pages, emptied, renamed.
const name = `rosterd sdk check ${process.pid}`;
const group = await client.groupApi.createGroup({ group: { profile: { name, description: 'made by the SDK check' } } });
assert.equal(group.type, 'OKTA_GROUP');
assert.equal(group.profile.name, name);
done('group created');
await refused(() => client.groupApi.createGroup({ group: { profile: { name } } }), 400, 'E0000001');
done('a second group of the same name refused');
const found = await all(await client.groupApi.listGroups({ search: `profile.name eq "${name}"` }));
assert.deepEqual(found.map((g) => g.id), [group.id]);
done('group found by name');
for (const user of users) {
  await client.groupApi.assignUserToGroup({ groupId: group.id, userId: user.id });
}
// Adding a member twice is no error and no second entry.
await client.groupApi.assignUserToGroup({ groupId: group.id, userId: users[0].id });
let members = await all(await client.groupApi.listGroupUsers({ groupId: group.id, limit: 2 }));
assert.deepEqual(members.map((u) => u.id).sort(), users.map((u) => u.id).sort());
done('members added and read in pages');
await client.groupApi.unassignUserFromGroup({ groupId: group.id, userId: users[1].id });
await client.groupApi.unassignUserFromGroup({ groupId: group.id, userId: users[1].id });
members = await all(await client.groupApi.listGroupUsers({ groupId: group.id }));
assert.equal(members.length, 2);
done('a member removed, twice without error');
await refused(() => client.groupApi.assignUserToGroup({ groupId: group.id, userId: 'no-such-user' }), 404, 'E0000007');
done('an unknown user refused');
const renamed = await client.groupApi.replaceGroup({ groupId: group.id, group: { profile: { name: `${name} (renamed)`, description: 'kept' } } });
assert.equal(renamed.profile.name, `${name} (renamed)`);
const read = await client.groupApi.getGroup({ groupId: group.id });
assert.equal(read.profile.description, 'kept');
done('group renamed');

// Group rules, as the test set them up.
const rules = await all(await client.groupApi.listGroupRules({ limit: 50 }));
assert.ok(rules.length >= 1, 'the test made a rule');
assert.ok(Array.isArray(rules[0].actions.assignUserToGroups.groupIds));
assert.equal(rules[0].status, 'ACTIVE');
done('group rules listed');

await client.groupApi.deleteGroup({ groupId: group.id });
await refused(() => client.groupApi.getGroup({ groupId: group.id }), 404, 'E0000007');
done('group deleted');
