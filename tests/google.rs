//! Push scenarios against a target of `kind: google_workspace`: the emulator's view of
//! Google's Directory API (groups with addresses, members added and removed in batch
//! requests, `pageToken` paging, Google's errors and quota answers, a service account's
//! token), each checked by reading the target. The scenarios shared with other kinds come
//! from `common::scenarios`. Every call rosterd sends is checked against the discovery
//! document Google's own Python client ships, and that client drives the emulator too.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::BTreeMap;

use common::scenarios::{self, opts, reconcile};
use common::world::{World, GOOGLE_ADMIN, TARGET};
use common::TestDb;
use rosterd::scim::emulator::Quirks;
use serde_json::Value;

on_both_backends!(
    a_sync_with_nothing_changed_sends_no_write,
    changes_are_pushed_in_batches,
    a_mass_removal_is_held_until_approved,
);

async fn a_sync_with_nothing_changed_sends_no_write(db: TestDb) {
    let world = World::with_google(db, 200, &[]).await;
    scenarios::nothing_changed_sends_no_write(&world).await;
    // Each group is at the address the template makes of its name.
    let groups = world.emulator().google_groups(TARGET);
    let addresses: Vec<&str> = groups.keys().map(String::as_str).collect();
    assert_eq!(
        addresses,
        [
            "engineering@groups.example.com",
            "everyone@groups.example.com",
            "managers@groups.example.com",
            "sales@groups.example.com",
        ]
    );
    world.assert_one_entry_each().await;
    assert_calls_are_described(&world);
}

async fn changes_are_pushed_in_batches(db: TestDb) {
    let mut world = World::with_google(db, 200, &[]).await;
    scenarios::changes_are_pushed_as_deltas(&mut world).await;
    let counters = world.emulator().counters(TARGET);
    assert!(counters.google_batches > 0, "{counters:?}");
    assert_calls_are_described(&world);
}

async fn a_mass_removal_is_held_until_approved(db: TestDb) {
    let mut world = World::with_google(db, 200, &[]).await;
    scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
}

#[tokio::test]
async fn a_reconcile_repairs_drift() {
    let world = World::with_google(common::sqlite_db(), 200, &[]).await;
    scenarios::a_reconcile_repairs_drift(&world).await;
    assert_calls_are_described(&world);
}

#[tokio::test]
async fn a_target_restarted_empty_is_rebuilt_in_one_plain_sync() {
    let world = World::with_google(common::sqlite_db(), 200, &[]).await;
    scenarios::a_target_restarted_empty_is_rebuilt_in_one_plain_sync(&world).await;
}

#[tokio::test]
async fn a_group_renamed_by_hand_is_named_back() {
    let world = World::with_google(common::sqlite_db(), 200, &[]).await;
    scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
    assert_calls_are_described(&world);
}

/// A guardrail the memberships break holds the Google group it concerns until approved.
#[tokio::test]
async fn a_broken_guardrail_holds_the_group_until_approved() {
    let mut world = World::with_google(common::sqlite_db(), 150, &[]).await;
    scenarios::a_broken_guardrail_holds_the_group_until_approved(&mut world).await;
}

/// A link takes over a Google group made by hand, found by its address, and is never
/// deleted; a group rosterd made is.
#[tokio::test]
async fn a_link_takes_over_a_group_and_only_made_groups_are_deleted() {
    let world = World::with_google(common::sqlite_db(), 100, &[]).await;
    scenarios::a_link_takes_over_a_group_and_only_made_groups_are_deleted(&world).await;
}

/// Google removes a deleted user from its groups; made again, the user has a new id but
/// the same address, which rosterd knows them by, so the cached keys all still answer. The
/// group verified this sync shows most of its members gone, a sign the target lost state:
/// the whole target is verified in the same sync and every member put back.
#[tokio::test]
async fn recreated_users_are_put_back_in_one_plain_sync() {
    let world = World::with_google(common::sqlite_db(), 200, &[]).await;
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    world.recreate_all_users().await;
    let emptied = world.actual().await;
    assert!(
        emptied.values().all(|members| members.is_empty()),
        "Google took the deleted users out of their groups: {emptied:?}"
    );
    let report = world.sync(opts()).await;
    assert_eq!((report.failed(), report.held()), (0, 0), "{report:?}");
    let reset = report.targets[0].reset.clone().unwrap_or_default();
    assert!(reset.contains("members rosterd pushed"), "{report:?}");
    world.assert_converged(&[]).await;
    let next = world.sync(opts()).await;
    assert_eq!(next.targets[0].writes, 0, "{next:?}");
}

/// A nested group and an address outside the account, added in the Admin console, are
/// kept by every sync, a reconcile included: reported, never removed.
#[tokio::test]
async fn nested_groups_and_external_members_are_kept_and_reported() {
    let world = World::with_google(common::sqlite_db(), 120, &[]).await;
    world.sync(opts()).await;
    let e = world.emulator();
    assert!(e.add_google_member(
        TARGET,
        "sales@groups.example.com",
        "engineering@groups.example.com"
    ));
    assert!(e.add_google_member(
        TARGET,
        "sales@groups.example.com",
        "partner@agency.example.org"
    ));
    let report = world.sync(reconcile()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let sales = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert_eq!(sales.removed, 0, "{sales:?}");
    assert_eq!(
        sales.kept,
        [
            "engineering@groups.example.com (a group)",
            "partner@agency.example.org (outside example.com)",
        ]
    );
    let members = &world.emulator().google_groups(TARGET)["sales@groups.example.com"];
    assert!(
        members.contains("engineering@groups.example.com"),
        "{members:?}"
    );
    assert!(
        members.contains("partner@agency.example.org"),
        "{members:?}"
    );
}

/// Google answers every 5th call 403 `userRateLimitExceeded` (batch parts included): those
/// calls are sent again after a backoff, and the sync converges with no failure.
#[tokio::test]
async fn quota_answers_are_retried_with_backoff() {
    let mut world = World::with_google(common::sqlite_db(), 120, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            google_throttle_every: 5,
            ..Quirks::default()
        },
    );
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.targets[0].retries > 0, "{report:?}");
    world.assert_converged(&[]).await;
    // Fewer than the removal failsafe holds (a fifth of the group).
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| w.division == "Sales").take(2) {
            w.division = "Engineering".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!((report.failed(), report.held()), (0, 0), "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let counters = world.emulator().counters(TARGET);
    assert!(
        counters.by_status.get(&403).copied().unwrap_or(0) > 5,
        "{counters:?}"
    );
}

/// Google does not say what is left of its quota: rosterd paces its calls (each call in a
/// batch counted) to `calls_per_minute`, so a quota of 60 calls a second is never exceeded
/// by a push of hundreds of calls at a pace of 50.
#[tokio::test]
async fn calls_are_paced_within_the_quota_before_google_refuses() {
    let world = World::with_google(common::sqlite_db(), 60, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            google_calls_per_window: 60,
            google_quota_window_seconds: 1,
            ..Quirks::default()
        },
    );
    let path = world.path("rosterd.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("calls_per_minute: 10000000", "calls_per_minute: 3000");
    std::fs::write(&path, text).unwrap();
    let started = std::time::Instant::now();
    let report = world.sync(opts()).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    assert_eq!(counters.by_status.get(&403), None, "{counters:?}");
    assert_eq!(report.targets[0].retries, 0, "{report:?}");
    // Paced: at 50 calls a second, the calls took at least this long.
    let calls = counters.google_calls as f64;
    assert!(calls > 100.0, "{counters:?}");
    assert!(
        took >= (calls - 10.0) / 50.0,
        "{calls} calls in {took:.2} s"
    );
}

/// A fifth of the requests fail (429, 5xx, dropped before or after they applied): the
/// sync converges, no group is made twice, no member is left out.
#[tokio::test]
async fn a_sync_converges_while_a_fifth_of_requests_fail() {
    let world = World::with_google(common::sqlite_db(), 120, &[]).await;
    world
        .emulator()
        .set_faults(TARGET, common::world::a_fifth_failing());
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    assert_eq!(world.emulator().google_groups(TARGET).len(), 4);
}

/// A key the account does not have, and scopes its delegation does not allow, fail the
/// target with the token endpoint's answer and what to do; the key is never shown.
#[tokio::test]
async fn a_key_or_scopes_the_account_lacks_fail_with_what_to_do() {
    let world = World::with_google(common::sqlite_db(), 40, &[]).await;
    world.use_google_key("okta-other.key");
    let report = world.sync(opts()).await;
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("/token") && error.contains("invalid_grant"),
        "{error}"
    );
    let key = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta-other.key"),
    )
    .unwrap();
    assert!(
        !error.contains(key.lines().nth(1).unwrap()),
        "the key is never shown"
    );

    world.use_google_key("okta-service-app.key");
    let path = world.path("rosterd.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "subject: admin@example.com",
        "subject: admin@example.com, scopes: \"https://www.googleapis.com/auth/admin.directory.group\"",
    );
    std::fs::write(&path, text).unwrap();
    let report = world.sync(opts()).await;
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(error.contains("unauthorized_client"), "{error}");
    assert!(error.contains("Domain-wide delegation"), "{error}");
    assert!(world.emulator().google_groups(TARGET).is_empty());
}

/// A group's push may name its address; a link takes over a group by its address.
#[tokio::test]
async fn a_push_names_its_address_and_a_link_finds_a_group_by_address() {
    let world = World::with_google(common::sqlite_db(), 60, &[]).await;
    let rules = std::fs::read_to_string(world.path("rules/groups.yaml")).unwrap();
    let rules = rules.replacen(
        "push: [app]",
        "push: [{ target: app, email: Sales-Team@Groups.Example.com }]",
        1,
    );
    std::fs::write(world.path("rules/groups.yaml"), &rules).unwrap();
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let groups = world.emulator().google_groups(TARGET);
    let first = rules[rules.find("- name: ").unwrap() + 8..]
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(
        groups.contains_key("sales-team@groups.example.com"),
        "the first group ({first}) is at its own address: {groups:?}"
    );
    assert!(!groups.contains_key(&format!("{first}@groups.example.com")));
    world.assert_converged(&[]).await;
}

/// `rosterd check` takes only the keys a Google Workspace target has, and a push's `email`
/// only for such a target.
#[test]
fn check_refuses_settings_of_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"),
    )
    .unwrap();
    let directory = &sample[sample.find("directory:").unwrap()..sample.find("rules:\n").unwrap()];
    let base = format!("{directory}rules:\n  dir: rules\n");
    let google = "    kind: google_workspace\n    url: https://admin.googleapis.com\n";
    let account =
        "    auth: { service_account: { key_file: k.json, subject: admin@example.com } }\n";
    let cases = [
        (
            format!("{google}{account}    patch: {{ max_members_per_request: 5 }}\n"),
            "targets.gw.patch: only a SCIM target has it",
        ),
        (
            format!("{google}    auth: {{ ssws: {{ token_env: T }} }}\n"),
            "a Google Workspace target takes a service account's key",
        ),
        (
            format!(
                "{google}    auth: {{ service_account: {{ key_file: k.json, subject: admin }} }}\n"
            ),
            "is not an email address",
        ),
        (
            format!("{google}{account}    google: {{ group_email: groups.example.com }}\n"),
            "is not an address template",
        ),
        (
            format!("{google}{account}    user_match: {{ attribute: login }}\n"),
            "matched on `primaryEmail`",
        ),
        (
            "    url: https://scim.example.com\n    google: { group_email: \"{name}@x.com\" }\n"
                .to_string(),
            "targets.gw.google: only a Google Workspace",
        ),
    ];
    for (target, message) in &cases {
        let path = dir.path().join("rosterd.yaml");
        std::fs::write(&path, format!("{base}targets:\n  gw:\n{target}")).unwrap();
        let err = rosterd::config::Config::load(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}\n(expected: {message})");
    }
    let ok = format!(
        "{google}{account}    google: {{ group_email: \"{{name}}@groups.example.com\" }}\n"
    );
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        format!("{base}targets:\n  gw:\n{ok}"),
    )
    .unwrap();
    let config = rosterd::config::Config::load(&dir.path().join("rosterd.yaml")).unwrap();
    let target = &config.targets["gw"];
    assert_eq!(target.user_attribute(), "primaryEmail");
    assert_eq!(target.google_domains(), ["example.com"]);
    assert_eq!(
        target.google().email_of("Eng-Managers").as_deref(),
        Some("eng-managers@groups.example.com")
    );
}

/// A push's `email` on a target whose groups have no address is an error at its place.
#[test]
fn an_email_on_a_push_to_a_scim_target_is_refused() {
    let world_dir = tempfile::tempdir().unwrap();
    let rules = world_dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("g.yaml"),
        "groups:\n  - name: g\n    kind: managed\n    rule: is_manager\n    push: [{ target: slack, email: g@example.com }]\n",
    )
    .unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml");
    let config = rosterd::config::Config::load(&sample).unwrap();
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let err = rosterd::rules::load(
        &rules,
        &rosterd::rules::Context::from_config(&config, &schema),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`email` is set, but target `slack`'s groups have no address"),
        "{err}"
    );
    assert!(err.contains("g.yaml:5:"), "{err}");
}

/// Google's own Python client (pinned in scripts/requirements-test.txt) drives the
/// emulator through every call rosterd makes, with the discovery document it ships.
/// `scripts/test` installs it and sets `ROSTERD_TEST_GOOGLE_CLIENT`; with CI=true a missing
/// one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_agrees_with_the_emulator() {
    let Some(python) = vendor_python() else {
        return;
    };
    let world = World::with_google(common::sqlite_db(), 20, &[]).await;
    world.sync(opts()).await;
    let users: Vec<String> = world
        .workers
        .iter()
        .take(4)
        .map(|w| w.email.clone())
        .collect();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/google-client/check.py");
    let key = world.path("google-key.json");
    let url = world.url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(url)
            .arg(key)
            .arg(GOOGLE_ADMIN)
            .args(&users)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in [
        "users found by address",
        "users listed in pages",
        "group created and found",
        "a second group at the same address refused",
        "members added in a batch and read in pages",
        "a member already there refused",
        "a member removed, and removing it again refused",
        "group renamed",
        "group deleted",
    ] {
        assert!(stdout.contains(&format!("ok {step}")), "{step}: {stdout}");
    }
    world.assert_converged(&[]).await;
    // The client's calls are described too (a check of the check).
    assert_calls_are_described(&world);
}

/// The Python with Google's client, or `None` (outside CI) when it is not installed.
fn vendor_python() -> Option<String> {
    let python = std::env::var("ROSTERD_TEST_GOOGLE_CLIENT")
        .ok()
        .filter(|v| !v.is_empty());
    if python.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ROSTERD_TEST_GOOGLE_CLIENT is not set: run the suite with scripts/test"
        );
        eprintln!("no google-api-python-client (run the suite with scripts/test): skipping");
    }
    python
}

/// The Directory API's discovery document, as google-api-python-client ships it.
fn discovery() -> Option<Value> {
    let python = vendor_python()?;
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import googleapiclient, os; print(os.path.join(os.path.dirname(googleapiclient.__file__), 'discovery_cache', 'documents', 'admin.directory_v1.json'))",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let path = String::from_utf8(output.stdout).unwrap();
    Some(serde_json::from_str(&std::fs::read_to_string(path.trim()).unwrap()).unwrap())
}

/// Every Directory API call the emulator served in this world is one the discovery
/// document describes: its method and path template, only parameters the method takes
/// (every required one given), and a body of the fields its request schema has.
fn assert_calls_are_described(world: &World) {
    let Some(document) = discovery() else {
        return;
    };
    let log = world.emulator().counters(TARGET).google_log;
    assert!(!log.is_empty(), "no Directory API call was logged");
    let methods: Vec<&Value> = document["resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| r["methods"].as_object())
        .flat_map(|m| m.values())
        .collect();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for call in &log {
        let method = call["method"].as_str().unwrap();
        let path = call["path"].as_str().unwrap();
        let described = methods.iter().find(|m| {
            m["httpMethod"] == method && template_matches(m["path"].as_str().unwrap(), path)
        });
        let Some(described) = described else {
            panic!("not in the discovery document: {method} {path}");
        };
        let id = described["id"].as_str().unwrap().to_string();
        let parameters = described["parameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        // The parameters every method takes (`alt`, `fields`, `prettyPrint`, ...).
        let common = document["parameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, _) in call["query"].as_object().unwrap() {
            if common.contains_key(name) {
                continue;
            }
            let p = parameters
                .get(name)
                .unwrap_or_else(|| panic!("{id}: no query parameter `{name}` ({call})"));
            assert_eq!(p["location"], "query", "{id}: `{name}` ({call})");
        }
        for (name, p) in &parameters {
            if p["required"] == true && p["location"] == "query" {
                assert!(
                    call["query"].get(name).is_some(),
                    "{id}: `{name}` is required ({call})"
                );
            }
        }
        if let Some(body) = call["body"].as_object() {
            let schema = described["request"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} takes no body ({call})"));
            let properties = document["schemas"][schema]["properties"]
                .as_object()
                .unwrap();
            for field in body.keys() {
                assert!(
                    properties.contains_key(field),
                    "{id}: {schema} has no `{field}` ({call})"
                );
            }
        }
        *seen.entry(id).or_default() += 1;
    }
    assert!(seen.len() >= 3, "{seen:?}");
}

/// Whether a path fills a discovery path template (`{name}` a single segment, `{+name}`
/// the rest).
fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}
