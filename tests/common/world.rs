//! A small organisation pushed to a real SCIM peer: the project's emulator (in this process)
//! or the third-party scim2-server (a process of its own). The push tests run their
//! scenarios against a `World` and compare the peer's groups with what the rules say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rosterd::directory::generate::{self, Worker};
use rosterd::push::{self, Desired, Report};
use rosterd::scim::emulator::{Emulator, Options};
use rosterd::store::Store;
use serde_json::{json, Value};

use super::TestDb;

/// The tenant (emulator) or tenant path (scim2-server) each world pushes to.
pub const TARGET: &str = "app";

/// The rules of the push tests: groups of a few sizes, a renamed display name, all pushed to
/// `app`.
pub const RULES: &str = r#"
groups:
  - name: engineering
    kind: managed
    rule: division == "Engineering"
    push: [app]
  - name: managers
    kind: managed
    rule: is_manager
    push:
      - target: app
        display_name: People Managers
  - name: sales
    kind: managed
    rule: division == "Sales"
    push: [app]
  - name: everyone
    kind: managed
    rule: status == "Active"
    push: [app]
"#;

/// The target options of the tests: fast retries, no pacing to speak of, small batches.
pub const TARGET_OPTIONS: &str = "    requests_per_second: 5000
    retries: 12
    retry_backoff_ms: 2
    unresolved_retry_seconds: 0
    patch: { max_members_per_request: 10 }
";

pub enum Peer {
    Emulator(Emulator),
    Scim2 {
        base: String,
        token: String,
    },
    /// A real directory server (`kind: ldap`): OpenLDAP's slapd, or Samba's AD DC.
    Ldap(super::ldap_server::Server),
}

/// Which API the world's target speaks: the emulator serves both over the same tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scim,
    Okta,
    Google,
    Ldap,
}

/// A fifth of all requests fail, each in one of the ways a target fails: 429, 500, 503, the
/// connection dropped before the change applied, or after.
pub fn a_fifth_failing() -> rosterd::scim::emulator::Faults {
    use rosterd::scim::emulator::{FaultKind, Faults};
    Faults {
        rate: 0.2,
        kinds: vec![
            FaultKind::Status(429),
            FaultKind::Status(500),
            FaultKind::Status(503),
            FaultKind::Drop,
            FaultKind::DropAfterApply,
        ],
        retry_after_seconds: 0,
        latency_ms: 0,
        only_writes: false,
    }
}

/// The Okta API token of the Okta worlds (the emulator accepts only it).
pub const OKTA_TOKEN: &str = "okta-test-api-token";

/// The Google worlds' service account, and the admin it acts for.
pub const GOOGLE_ACCOUNT: &str = "rosterd@rosterd-test.iam.gserviceaccount.com";
pub const GOOGLE_ADMIN: &str = "admin@example.com";

/// A Google service account's JSON key, as the Google Cloud console downloads it, signed
/// with the test fixtures' RSA key (`key`) and pointing at `token_uri`.
pub fn google_key_json(key: &str, token_uri: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let pem = std::fs::read_to_string(fixtures.join(key)).unwrap();
    serde_json::json!({
        "type": "service_account",
        "project_id": "rosterd-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": GOOGLE_ACCOUNT,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub peer: Peer,
    pub workers: Vec<Worker>,
    /// The tenant at the peer; scim2-server tests each get their own.
    pub tenant: String,
    pub http: reqwest::Client,
    pub kind: Kind,
}

impl World {
    /// `size` generated workers on `db`, pushed to an in-process emulator whose tenant has an
    /// account for every worker but those in `without_account`.
    pub async fn with_emulator(db: TestDb, size: usize, without_account: &[&str]) -> World {
        World::with_emulator_options(db, size, without_account, Options::default()).await
    }

    /// As [`World::with_emulator`], with the emulator's auth and quirks from `options`.
    pub async fn with_emulator_options(
        db: TestDb,
        size: usize,
        without_account: &[&str],
        options: Options,
    ) -> World {
        let workers = generate::generate(size, 3);
        let users = workers
            .iter()
            .filter(|w| !without_account.contains(&w.email.as_str()))
            .map(|w| w.email.clone())
            .collect();
        let emulator =
            Emulator::start("127.0.0.1:0".parse().unwrap(), Options { users, ..options })
                .await
                .unwrap();
        let world = World::build(db, workers, Peer::Emulator(emulator), TARGET.to_string());
        world.write_config("", TARGET_OPTIONS);
        world
    }

    /// As [`World::with_emulator`], with the target speaking Okta's management API (`kind:
    /// okta`, an `SSWS` API token) to the emulator's Okta view of the same tenant.
    pub async fn with_okta(db: TestDb, size: usize, without_account: &[&str]) -> World {
        World::with_okta_options(db, size, without_account, Options::default()).await
    }

    /// As [`World::with_okta`], with more of the emulator's settings from `options`.
    pub async fn with_okta_options(
        db: TestDb,
        size: usize,
        without_account: &[&str],
        options: Options,
    ) -> World {
        std::env::set_var("ROSTERD_TEST_OKTA_TOKEN", OKTA_TOKEN);
        let options = Options {
            token: Some(OKTA_TOKEN.to_string()),
            ..options
        };
        let mut world = World::with_emulator_options(db, size, without_account, options).await;
        world.kind = Kind::Okta;
        world.write_config("", TARGET_OPTIONS);
        world
    }

    /// As [`World::with_emulator`], with the target speaking Google's Directory API (`kind:
    /// google_workspace`, a service account's key, groups at `{name}@groups.example.com`,
    /// 10 member changes a batch) to the emulator's Google view of the same tenant.
    pub async fn with_google(db: TestDb, size: usize, without_account: &[&str]) -> World {
        World::with_google_options(db, size, without_account, Options::default()).await
    }

    /// As [`World::with_google`], with more of the emulator's settings from `options`.
    pub async fn with_google_options(
        db: TestDb,
        size: usize,
        without_account: &[&str],
        options: Options,
    ) -> World {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let public = std::fs::read_to_string(fixtures.join("okta-service-app.pub.pem")).unwrap();
        let options = Options {
            // A token no one is given: every request needs one the token endpoint issued.
            token: Some("no-one-has-this-token".to_string()),
            google_service_account: Some((GOOGLE_ACCOUNT.to_string(), public)),
            ..options
        };
        let mut world = World::with_emulator_options(db, size, without_account, options).await;
        world.kind = Kind::Google;
        world.use_google_key("okta-service-app.key");
        world
    }

    /// `size` generated workers pushed to a private slapd (`kind: ldap`, over ldaps with the
    /// test CA, bound as rosterd's service account, 10 member values a modify), with a user
    /// for every worker but those in `without_account`. `None` outside CI without slapd.
    pub async fn with_slapd(db: TestDb, size: usize, without_account: &[&str]) -> Option<World> {
        World::with_directory(
            db,
            size,
            without_account,
            super::ldap_server::Flavor::Openldap,
        )
        .await
    }

    /// As [`World::with_slapd`], against Samba's Active Directory domain controller (AD's
    /// names, `group` objects, range retrieval in ranges of 50).
    pub async fn with_samba(db: TestDb, size: usize, without_account: &[&str]) -> Option<World> {
        World::with_directory(db, size, without_account, super::ldap_server::Flavor::Samba).await
    }

    async fn with_directory(
        db: TestDb,
        size: usize,
        without_account: &[&str],
        flavor: super::ldap_server::Flavor,
    ) -> Option<World> {
        let workers = generate::generate(size, 3);
        let emails: Vec<String> = workers
            .iter()
            .filter(|w| !without_account.contains(&w.email.as_str()))
            .map(|w| w.email.clone())
            .collect();
        let server = super::ldap_server::Server::start(flavor, &emails).await?;
        std::env::set_var(
            "ROSTERD_TEST_LDAP_PASSWORD",
            super::ldap_server::ROSTERD_PASSWORD,
        );
        let mut world = World::build(db, workers, Peer::Ldap(server), TARGET.to_string());
        world.kind = Kind::Ldap;
        world.write_config("", TARGET_OPTIONS);
        Some(world)
    }

    pub fn directory(&self) -> &super::ldap_server::Server {
        match &self.peer {
            Peer::Ldap(s) => s,
            _ => panic!("this test needs a directory server"),
        }
    }

    /// Writes the service account's key (signed with the fixture `key`) and the config
    /// that uses it.
    pub fn use_google_key(&self, key: &str) {
        let token_uri = format!("{}/token", self.url());
        std::fs::write(
            self.path("google-key.json"),
            google_key_json(key, &token_uri),
        )
        .unwrap();
        self.write_config("", TARGET_OPTIONS);
    }

    /// The fewest writes that make these member changes (adds plus removes, by group): a
    /// SCIM PATCH carries 10 of them here; Okta takes one request each.
    pub fn writes_for(&self, changes: &[usize]) -> u64 {
        match self.kind {
            Kind::Scim => changes.iter().map(|&n| (n as u64).div_ceil(10)).sum(),
            Kind::Okta => changes.iter().map(|&n| n as u64).sum(),
            // One batch request per group's 10 changes; one modify per 10 values.
            Kind::Google | Kind::Ldap => changes.iter().map(|&n| (n as u64).div_ceil(10)).sum(),
        }
    }

    /// The requests that read the first group of a push with its members: SCIM's one GET;
    /// Okta's group, the group rules (once a push, to refuse a group a rule fills), then its
    /// members' page.
    pub fn first_group_read_requests(&self) -> u64 {
        match self.kind {
            Kind::Scim => 1,
            Kind::Okta => 3,
            // The group, then its members' page.
            Kind::Google => 2,
            // One base search reads the group with its members.
            Kind::Ldap => 1,
        }
    }

    /// `size` generated workers pushed to the scim2-server at `base` (one tenant per world),
    /// with an account for each.
    pub async fn with_scim2(db: TestDb, size: usize, base: &str, token: &str) -> World {
        let workers = generate::generate(size, 3);
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tenant = format!(
            "t{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let world = World::build(
            db,
            workers,
            Peer::Scim2 {
                base: base.trim_end_matches('/').to_string(),
                token: token.to_string(),
            },
            tenant,
        );
        let emails: Vec<String> = world.workers.iter().map(|w| w.email.clone()).collect();
        for email in emails {
            world.add_account(&email).await;
        }
        world.write_config("", TARGET_OPTIONS);
        world
    }

    fn build(db: TestDb, workers: Vec<Worker>, peer: Peer, tenant: String) -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/groups.yaml"), RULES).unwrap();
        let world = World {
            dir,
            db,
            peer,
            workers,
            tenant,
            http: reqwest::Client::new(),
            kind: Kind::Scim,
        };
        world.write_export();
        world
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SCIM base URL of this world's tenant.
    pub fn url(&self) -> String {
        match &self.peer {
            Peer::Emulator(e) => e.url(&self.tenant),
            Peer::Scim2 { base, .. } => format!("{base}/{}/v2", self.tenant),
            Peer::Ldap(s) => s.url(),
        }
    }

    pub fn emulator(&self) -> &Emulator {
        match &self.peer {
            Peer::Emulator(e) => e,
            _ => panic!("this test needs the emulator"),
        }
    }

    /// Rewrites the config: `extra` goes at the top level, `target` under `targets.app`.
    pub fn write_config(&self, extra: &str, target: &str) {
        let sample =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"))
                .unwrap();
        let start = sample.find("directory:").unwrap();
        let end = sample.find("rules:\n").unwrap();
        let directory = sample[start..end].replace("file: sample/workers.csv", "file: workers.csv");
        // scim2-server gets its own patch settings; an Okta target has none.
        let (auth, own_patch): (String, bool) = match (&self.peer, self.kind) {
            (Peer::Scim2 { .. }, _) => ("    auth: { bearer: { token_env: ROSTERD_TEST_SCIM2_TOKEN } }\n    patch: { remove: path_filter, max_members_per_request: 10 }\n".into(), true),
            (Peer::Emulator(_), Kind::Okta) => ("    kind: okta\n    auth: { ssws: { token_env: ROSTERD_TEST_OKTA_TOKEN } }\n".into(), true),
            (Peer::Emulator(_), Kind::Scim) => (String::new(), false),
            (Peer::Emulator(_), Kind::Google) => (
                "    kind: google_workspace\n    auth: { service_account: { key_file: google-key.json, subject: admin@example.com } }\n    google: { group_email: \"{name}@groups.example.com\", batch_size: 10, calls_per_minute: 10000000 }\n".into(),
                true,
            ),
            (Peer::Ldap(s), _) => (
                format!(
                    "    kind: ldap\n    auth: {{ simple: {{ bind_dn: \"{}\", password_env: ROSTERD_TEST_LDAP_PASSWORD }} }}\n    tls: {{ ca_file: {} }}\n    user_match: {{ attribute: {} }}\n    ldap: {}\n",
                    s.bind_dn(),
                    s.ca_file().display(),
                    s.user_attribute(),
                    s.settings(),
                ),
                true,
            ),
            (Peer::Emulator(_), Kind::Ldap) => unreachable!("an LDAP world has a directory server"),
        };
        let target = if own_patch {
            target
                .lines()
                .filter(|l| !l.trim_start().starts_with("patch:"))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            target.to_string()
        };
        let config = format!(
            "database: {}\n{extra}\n{directory}rules:\n  dir: rules\ntargets:\n  {TARGET}:\n    url: {}\n{auth}{target}",
            self.db.url,
            self.url()
        );
        std::fs::write(self.path("rosterd.yaml"), config).unwrap();
    }

    pub fn write_export(&self) {
        let file = std::fs::File::create(self.path("workers.csv")).unwrap();
        generate::write_csv(&self.workers, file).unwrap();
    }

    /// Changes workers, then rewrites the export.
    pub fn edit_workers(&mut self, edit: impl FnOnce(&mut Vec<Worker>)) {
        edit(&mut self.workers);
        self.write_export();
    }

    pub fn config(&self) -> rosterd::config::Config {
        rosterd::config::Config::load(&self.path("rosterd.yaml")).unwrap()
    }

    pub fn rules(&self, config: &rosterd::config::Config) -> rosterd::rules::RuleSet {
        let schema = rosterd::directory::Schema::from_config(&config.directory);
        rosterd::rules::load(
            &config.rules.dir,
            &rosterd::rules::Context::from_config(config, &schema),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Approves every push hold that is held, as CorpSec would from the CLI.
    pub async fn approve_held(&self) {
        let store = self.store().await;
        let held = store
            .push_holds(Some(rosterd::store::HoldStatus::Held))
            .await
            .unwrap();
        for hold in held {
            store
                .approve_push_hold(hold.id, "2026-11-22T00:00:00Z", "cli:corpsec")
                .await
                .unwrap();
        }
        store.close().await;
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.db.url).await.unwrap()
    }

    /// One full cycle, as `rosterd sync` runs it.
    pub async fn sync(&self, options: push::Options) -> Report {
        let config = self.config();
        let rules = self.rules(&config);
        let store = self.store().await;
        let inputs = rosterd::cycle::Inputs {
            config: std::sync::Arc::new(config.clone()),
            rules: std::sync::Arc::new(rules.clone()),
            as_of: super::as_of(),
            now: rosterd::clock::now_utc(),
            kind: "sync",
        };
        rosterd::cycle::run(&inputs, &store)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let desired = Desired::from_store(&store, &config).await.unwrap();
        let report = push::run(&config, &rules, &desired, &store, &options)
            .await
            .unwrap();
        store.close().await;
        report
    }

    /// What the peer should hold: display name → members' emails, from the stored
    /// memberships, leaving out workers without an account.
    pub async fn expected(&self, without_account: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        let store = self.store().await;
        let memberships = store.memberships().await.unwrap();
        store.close().await;
        let email: BTreeMap<&str, &str> = self
            .workers
            .iter()
            .map(|w| (w.id.as_str(), w.email.as_str()))
            .collect();
        let config = self.config();
        let rules = self.rules(&config);
        let mut out = BTreeMap::new();
        for group in rules.groups() {
            for push in group.push.iter().filter(|p| p.active && p.target == TARGET) {
                let members = memberships
                    .get(&group.name)
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .map(|k| email[k.as_str()].to_lowercase())
                    .filter(|e| !without_account.contains(&e.as_str()))
                    .collect();
                out.insert(push.display_name.clone(), members);
            }
        }
        out
    }

    /// What the peer holds: display name → members' userNames (lower case).
    pub async fn actual(&self) -> BTreeMap<String, BTreeSet<String>> {
        match &self.peer {
            Peer::Emulator(e) => e
                .groups(&self.tenant)
                .into_iter()
                .map(|(g, m)| (g, m.into_iter().map(|u| u.to_lowercase()).collect()))
                .collect(),
            Peer::Scim2 { .. } => {
                let users: BTreeMap<String, String> = self.accounts().await.into_iter().collect();
                self.list("Groups")
                    .await
                    .iter()
                    .map(|g| {
                        // Entries that are no user's are not members; `entries` counts them.
                        let members = g["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|m| users.get(m["value"].as_str().unwrap()).cloned())
                            .collect();
                        (g["displayName"].as_str().unwrap().to_string(), members)
                    })
                    .collect()
            }
            Peer::Ldap(s) => s.groups().await,
        }
    }

    /// Asserts that the peer holds exactly what the rules say, and no duplicate groups.
    pub async fn assert_converged(&self, without_account: &[&str]) {
        let expected = self.expected(without_account).await;
        let actual = self.actual().await;
        for (name, members) in &expected {
            let got = actual
                .get(name)
                .unwrap_or_else(|| panic!("the peer has no group `{name}`"));
            let missing: Vec<_> = members.difference(got).collect();
            let extra: Vec<_> = got.difference(members).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "group `{name}`: missing {missing:?}, extra {extra:?}"
            );
        }
        if let Peer::Scim2 { .. } = &self.peer {
            let names: Vec<String> = self
                .list("Groups")
                .await
                .iter()
                .map(|g| g["displayName"].as_str().unwrap().to_string())
                .collect();
            let unique: BTreeSet<&String> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "duplicate groups: {names:?}");
        } else if let Peer::Ldap(s) = &self.peer {
            for name in expected.keys() {
                assert_eq!(s.group_count(name).await, 1, "duplicates of `{name}`");
            }
        } else {
            for name in expected.keys() {
                assert_eq!(
                    self.emulator().group_count(&self.tenant, name),
                    1,
                    "duplicates of `{name}`"
                );
            }
        }
    }

    /// Every group's entries by member id (a member held twice listed twice), and how many
    /// entries are no user's, as the peer holds them.
    pub async fn entries(&self) -> (BTreeMap<String, Vec<String>>, usize) {
        match &self.peer {
            Peer::Emulator(e) => e.entries(&self.tenant),
            Peer::Scim2 { .. } => {
                let users: BTreeSet<String> = self
                    .accounts()
                    .await
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                let mut unknown = 0;
                let groups = self
                    .list("Groups")
                    .await
                    .iter()
                    .map(|g| {
                        let ids: Vec<String> = g["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|m| m["value"].as_str().unwrap().to_string())
                            .collect();
                        unknown += ids.iter().filter(|id| !users.contains(*id)).count();
                        (g["displayName"].as_str().unwrap().to_string(), ids)
                    })
                    .collect();
                (groups, unknown)
            }
            Peer::Ldap(s) => {
                let users = s.users().await;
                let groups = s.groups_raw().await;
                let unknown = groups
                    .values()
                    .flatten()
                    .filter(|m| !users.contains_key(&m.to_lowercase()))
                    .count();
                (groups, unknown)
            }
        }
    }

    /// Asserts that every group holds each member once, and no entry that is no user's.
    pub async fn assert_one_entry_each(&self) {
        let (groups, unknown) = self.entries().await;
        for (name, ids) in &groups {
            let unique: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(
                unique.len(),
                ids.len(),
                "group `{name}` holds a member twice"
            );
        }
        assert_eq!(unknown, 0, "entries that are no user's are left");
    }

    /// Deletes every user and creates each again under a new id, as a restore or a
    /// re-import does. The emulator keeps the old ids in its groups only with
    /// `accept_unknown_members`; scim2-server keeps them.
    pub async fn recreate_all_users(&self) {
        match &self.peer {
            Peer::Emulator(e) => e.recreate_all_users(&self.tenant),
            Peer::Scim2 { .. } => {
                for u in self.list("Users").await {
                    let url = format!("{}/Users/{}", self.url(), u["id"].as_str().unwrap());
                    self.scim2_request(reqwest::Method::DELETE, &url, None)
                        .await;
                    self.add_account(u["userName"].as_str().unwrap()).await;
                }
            }
            Peer::Ldap(_) => panic!("a directory's users keep their DNs: not for a directory"),
        }
    }

    /// The target loses every group and user, and its users come back under new ids: a
    /// restart on empty storage followed by a re-import of the users.
    pub async fn restart_empty(&self) {
        match &self.peer {
            Peer::Emulator(e) => e.restart_empty(&self.tenant, true),
            Peer::Scim2 { .. } => {
                for g in self.list("Groups").await {
                    let url = format!("{}/Groups/{}", self.url(), g["id"].as_str().unwrap());
                    self.scim2_request(reqwest::Method::DELETE, &url, None)
                        .await;
                }
                self.recreate_all_users().await;
            }
            // A directory restored without its groups (its users are its own).
            Peer::Ldap(s) => s.delete_groups().await,
        }
    }

    /// Renames a group as a person in the target's console would.
    pub async fn rename_by_hand(&self, from: &str, to: &str) {
        match &self.peer {
            Peer::Emulator(e) => assert!(e.rename_by_hand(&self.tenant, from, to)),
            Peer::Scim2 { .. } => {
                let groups = self.list("Groups").await;
                let g = groups.iter().find(|g| g["displayName"] == from).unwrap();
                let body = json!({"schemas": [rosterd::scim::wire::PATCH_OP], "Operations": [
                    {"op": "replace", "path": "displayName", "value": to}
                ]});
                let url = format!("{}/Groups/{}", self.url(), g["id"].as_str().unwrap());
                self.scim2_request(reqwest::Method::PATCH, &url, Some(body))
                    .await;
            }
            Peer::Ldap(s) => s.rename(from, to).await,
        }
    }

    /// Adds entries to a group by raw member id, as another tool might: ids that are no
    /// user's, or ids it holds already (held twice: the emulator with `duplicate_on_add`,
    /// scim2-server when its member list is replaced with them).
    pub async fn add_entries_by_hand(&self, group: &str, ids: &[&str]) {
        match &self.peer {
            Peer::Emulator(e) => e.add_entries_by_hand(&self.tenant, group, ids),
            Peer::Scim2 { .. } => {
                let groups = self.list("Groups").await;
                let g = groups.iter().find(|g| g["displayName"] == group).unwrap();
                let mut members = g["members"].as_array().cloned().unwrap_or_default();
                members.extend(ids.iter().map(|id| json!({"value": id})));
                let body = json!({
                    "schemas": [rosterd::scim::wire::GROUP_SCHEMA],
                    "displayName": group,
                    "members": members,
                });
                let url = format!("{}/Groups/{}", self.url(), g["id"].as_str().unwrap());
                self.scim2_request(reqwest::Method::PUT, &url, Some(body))
                    .await;
            }
            // DNs; a directory holds a value once.
            Peer::Ldap(s) => {
                let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
                s.edit_members(group, &ids, &[]).await;
            }
        }
    }

    /// Every resource of a kind at scim2-server, following its pages.
    pub async fn list(&self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let url = format!(
                "{}/{kind}?startIndex={}&count=100",
                self.url(),
                out.len() + 1
            );
            let page: Value = self
                .scim2_request(reqwest::Method::GET, &url, None)
                .await
                .unwrap();
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap() as usize;
            let done = resources.is_empty();
            out.extend(resources);
            if done || out.len() >= total {
                return out;
            }
        }
    }

    /// scim2-server's users: (id, lower-cased userName).
    async fn accounts(&self) -> Vec<(String, String)> {
        self.list("Users")
            .await
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap().to_string(),
                    u["userName"].as_str().unwrap().to_lowercase(),
                )
            })
            .collect()
    }

    pub async fn add_account(&self, email: &str) {
        match &self.peer {
            Peer::Emulator(e) => {
                e.add_user(&self.tenant, email);
            }
            Peer::Scim2 { .. } => {
                let user =
                    json!({"schemas": [rosterd::scim::wire::USER_SCHEMA], "userName": email});
                self.scim2_request(
                    reqwest::Method::POST,
                    &format!("{}/Users", self.url()),
                    Some(user),
                )
                .await
                .unwrap();
            }
            Peer::Ldap(s) => s.add_user(email).await,
        }
    }

    /// Makes a group by hand with these members (by address), as a person in the target's
    /// console would.
    pub async fn create_group_by_hand(&self, name: &str, emails: &[&str]) {
        match &self.peer {
            Peer::Emulator(e) => e.create_by_hand(&self.tenant, name, emails),
            Peer::Ldap(s) => {
                let dns: Vec<String> = emails.iter().map(|e| s.user_dn(e)).collect();
                s.add_group(name, &dns).await;
            }
            Peer::Scim2 { .. } => panic!("not for scim2-server"),
        }
    }

    /// Adds and removes members by hand, as a person in the target's console would.
    pub async fn edit_by_hand(&self, group: &str, add: &[&str], remove: &[&str]) {
        match &self.peer {
            Peer::Emulator(e) => assert!(e.edit_by_hand(&self.tenant, group, add, remove)),
            Peer::Scim2 { .. } => {
                let users: BTreeMap<String, String> = self
                    .accounts()
                    .await
                    .into_iter()
                    .map(|(id, name)| (name, id))
                    .collect();
                let groups = self.list("Groups").await;
                let g = groups.iter().find(|g| g["displayName"] == group).unwrap();
                let mut ops = Vec::new();
                for email in add {
                    ops.push(json!({"op": "add", "path": "members", "value": [{"value": users[*email]}]}));
                }
                for email in remove {
                    ops.push(json!({"op": "remove", "path": format!("members[value eq \"{}\"]", users[*email])}));
                }
                let body = json!({"schemas": [rosterd::scim::wire::PATCH_OP], "Operations": ops});
                let url = format!("{}/Groups/{}", self.url(), g["id"].as_str().unwrap());
                self.scim2_request(reqwest::Method::PATCH, &url, Some(body))
                    .await;
            }
            Peer::Ldap(s) => {
                let dns = |emails: &[&str]| -> Vec<String> {
                    emails.iter().map(|e| s.user_dn(e)).collect()
                };
                s.edit_members(group, &dns(add), &dns(remove)).await;
            }
        }
    }

    async fn scim2_request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let Peer::Scim2 { token, .. } = &self.peer else {
            panic!("only for scim2-server")
        };
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{url}: HTTP {status}: {text}");
        serde_json::from_str(&text).ok()
    }
}
