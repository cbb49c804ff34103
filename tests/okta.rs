//! Push scenarios against a target of `kind: okta`: the emulator's view of Okta's management
//! API (groups of type OKTA_GROUP, members added and removed one request each, `Link`
//! paging, Okta's errors and rate-limit headers), each checked by reading the target. The
//! scenarios shared with SCIM peers come from `common::scenarios`.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::scenarios::{self, opts, reconcile};
use common::world::{World, TARGET, TARGET_OPTIONS};
use common::TestDb;
use rosterd::scim::emulator::Quirks;

on_both_backends!(
    a_sync_with_nothing_changed_sends_no_write,
    changes_are_pushed_one_member_a_request,
    a_mass_removal_is_held_until_approved,
);

async fn a_sync_with_nothing_changed_sends_no_write(db: TestDb) {
    let world = World::with_okta(db, 200, &[]).await;
    scenarios::nothing_changed_sends_no_write(&world).await;
    // What rosterd made is what Okta shows: OKTA_GROUPs, each member once.
    let counters = world.emulator().counters(TARGET);
    assert_eq!(counters.faults, 0);
    assert_eq!(counters.by_status.get(&429), None);
    world.assert_one_entry_each().await;
}

async fn changes_are_pushed_one_member_a_request(db: TestDb) {
    let mut world = World::with_okta(db, 200, &[]).await;
    scenarios::changes_are_pushed_as_deltas(&mut world).await;
}

async fn a_mass_removal_is_held_until_approved(db: TestDb) {
    let mut world = World::with_okta(db, 200, &[]).await;
    scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
}

#[tokio::test]
async fn a_reconcile_repairs_drift() {
    let world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    scenarios::a_reconcile_repairs_drift(&world).await;
}

#[tokio::test]
async fn a_target_restarted_empty_is_rebuilt_in_one_plain_sync() {
    let world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    scenarios::a_target_restarted_empty_is_rebuilt_in_one_plain_sync(&world).await;
}

#[tokio::test]
async fn a_group_renamed_by_hand_is_named_back() {
    let world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
}

/// Okta removes a deleted user from its groups and refuses ids that are no user's. After
/// every user was created again under a new id, one plain sync finds the cached ids gone
/// (the verified slice, then the sample it confirms), looks everyone up again and puts every
/// member back.
#[tokio::test]
async fn recreated_users_are_put_back_in_one_plain_sync() {
    let world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    world.recreate_all_users().await;
    let emptied = world.actual().await;
    assert!(
        emptied.values().all(|members| members.is_empty()),
        "Okta took the deleted users out of their groups: {emptied:?}"
    );
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.held(), 0, "{report:?}");
    assert!(report.targets[0].reset.is_some(), "{report:?}");
    world.assert_converged(&[]).await;
    let next = world.sync(opts()).await;
    assert_eq!(next.targets[0].writes, 0, "{next:?}");
}

/// A fifth of the requests fail (429, 5xx, dropped before or after they applied): the sync
/// still converges, with no group made twice and no member left out.
#[tokio::test]
async fn a_sync_converges_while_a_fifth_of_requests_fail() {
    let mut world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    world
        .emulator()
        .set_faults(TARGET, common::world::a_fifth_failing());
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    assert!(counters.faults > 10, "faults were injected: {counters:?}");
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| w.division == "Sales").take(5) {
            w.division = "Engineering".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
}

/// A group an app fills (APP_GROUP) and a group an Okta group rule fills are refused by
/// name, and nothing is sent to them; the other groups are pushed.
#[tokio::test]
async fn groups_okta_or_an_app_manages_are_refused() {
    let world = World::with_okta(common::sqlite_db(), 200, &[]).await;
    world.sync(opts()).await;
    let before = world.actual().await;
    assert!(world
        .emulator()
        .set_group_type(TARGET, "sales", "APP_GROUP"));
    world
        .emulator()
        .add_group_rule(TARGET, "Engineers by department", &["engineering"]);
    let report = world.sync(reconcile()).await;
    let error = |group: &str| {
        report.targets[0]
            .groups
            .iter()
            .find(|g| g.group == group)
            .and_then(|g| g.error.clone())
            .unwrap_or_default()
    };
    assert!(error("sales").contains("APP_GROUP"), "{report:?}");
    assert!(
        error("engineering").contains("group rule `Engineers by department`"),
        "{report:?}"
    );
    assert!(error("everyone").is_empty(), "{report:?}");
    // The refusals concern those groups, not the target: it stays usable.
    assert!(report.targets[0].error.is_none(), "{report:?}");
    assert_eq!(world.actual().await, before);
}

/// A token that may not read the group rules cannot tell whether a rule fills a group: the
/// groups are not touched, each says why, and the target is not taken for unreachable.
#[tokio::test]
async fn a_token_that_cannot_read_group_rules_touches_no_group() {
    let world = World::with_okta(common::sqlite_db(), 60, &[]).await;
    world.sync(opts()).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            okta_rules_forbidden: true,
            ..Quirks::default()
        },
    );
    let report = world.sync(reconcile()).await;
    assert!(report.targets[0].error.is_none(), "{report:?}");
    assert_eq!(report.targets[0].groups.len(), 4, "{report:?}");
    for pair in &report.targets[0].groups {
        let error = pair.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("may not read the group rules"),
            "{}: {error}",
            pair.group
        );
    }
    let store = world.store().await;
    let health = store.target_health().await.unwrap();
    store.close().await;
    let app = health.iter().find(|h| h.target == TARGET).unwrap();
    assert!(app.healthy, "{health:?}");
}

/// With Okta's rate limits on (a few requests a window), the client reads what is left
/// from `X-Rate-Limit-Remaining` and waits for `X-Rate-Limit-Reset` before a bucket is
/// spent: the target never has to answer 429.
#[tokio::test]
async fn rate_limits_are_kept_before_a_429() {
    let world = World::with_okta(common::sqlite_db(), 60, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            okta_rate_limit_per_minute: 25,
            okta_rate_limit_window_seconds: 2,
            ..Quirks::default()
        },
    );
    world.write_config(
        "",
        &format!("{TARGET_OPTIONS}    max_retry_after_seconds: 5\n"),
    );
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    let requests = counters.reads + counters.writes;
    assert!(
        requests > 50,
        "enough requests to spend a bucket: {requests}"
    );
    assert_eq!(counters.by_status.get(&429), None, "{counters:?}");
    assert_eq!(report.targets[0].retries, 0, "{report:?}");
}

/// `rosterd check` takes only the keys an Okta target has: a SCIM PATCH setting or a bearer
/// token is an error that says what the kind takes.
#[test]
fn check_refuses_settings_of_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"),
    )
    .unwrap();
    let directory = &sample[sample.find("directory:").unwrap()..sample.find("rules:\n").unwrap()];
    let base = format!("{directory}rules:\n  dir: rules\n");
    let cases = [
        (
            "    kind: okta\n    url: https://example.okta.com\n    auth: { ssws: { token_env: T } }\n    patch: { max_members_per_request: 5 }\n",
            "targets.okta.patch: only a SCIM target has it",
        ),
        (
            "    kind: okta\n    url: https://example.okta.com\n    auth: { bearer: { token_env: T } }\n",
            "an Okta target takes an API token",
        ),
        (
            "    kind: okta\n    url: https://example.okta.com\n    auth: { ssws: { token_env: T } }\n    user_match: { attribute: nickName }\n",
            "matched on `login` or `email`, not `nickName`",
        ),
        (
            "    url: https://scim.example.com\n    auth: { ssws: { token_env: T } }\n",
            "a SCIM target takes `bearer` or `oauth2`",
        ),
        (
            "    kind: okta\n    url: https://example.okta.com\n    auth: { private_key_jwt: { client_id: c, key_file: k.pem, key_env: K } }\n",
            "name the private key with one of `key_file` or `key_env`",
        ),
    ];
    for (target, message) in cases {
        let path = dir.path().join("rosterd.yaml");
        std::fs::write(&path, format!("{base}targets:\n  okta:\n{target}")).unwrap();
        let err = rosterd::config::Config::load(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}\n(expected: {message})");
    }
    let ok = "    kind: okta\n    url: https://example.okta.com\n    auth: { ssws: { token_env: T } }\n    user_match: { attribute: email }\n";
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        format!("{base}targets:\n  okta:\n{ok}"),
    )
    .unwrap();
    let config = rosterd::config::Config::load(&dir.path().join("rosterd.yaml")).unwrap();
    assert_eq!(config.targets["okta"].user_attribute(), "email");
}

/// Okta's own Node.js SDK (`@okta/okta-sdk-nodejs`, pinned in scripts/okta-sdk) drives the
/// emulator through every call rosterd makes: users by login and in pages, a group made,
/// found, filled and read in pages, a member removed, a duplicate name and an unknown user
/// refused with Okta's error codes, a rename, the group rules, a delete. `scripts/test`
/// installs it and sets `ROSTERD_TEST_OKTA_SDK`; with CI=true a missing one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_okta_sdk_agrees_with_the_emulator() {
    let Some(script) = std::env::var("ROSTERD_TEST_OKTA_SDK")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ROSTERD_TEST_OKTA_SDK is not set: run the suite with scripts/test"
        );
        eprintln!("no Okta SDK (run the suite with scripts/test): skipping its check");
        return;
    };
    let world = World::with_okta(common::sqlite_db(), 20, &[]).await;
    world.sync(opts()).await;
    world
        .emulator()
        .add_group_rule(TARGET, "Everyone by status", &["everyone"]);
    let logins: Vec<String> = world
        .workers
        .iter()
        .take(3)
        .map(|w| w.email.clone())
        .collect();
    let url = world.url();
    // The emulator answers on this test's runtime meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(&script)
            .arg(url)
            .arg(common::world::OKTA_TOKEN)
            .args(&logins)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in [
        "users found by login",
        "users listed in pages",
        "group created",
        "a second group of the same name refused",
        "members added and read in pages",
        "a member removed, twice without error",
        "an unknown user refused",
        "group renamed",
        "group rules listed",
        "group deleted",
    ] {
        assert!(stdout.contains(&format!("ok {step}")), "{step}: {stdout}");
    }
    // The SDK's group is gone, and rosterd's are as they were.
    world.assert_converged(&[]).await;
}

/// A guardrail the memberships break holds the Okta group it concerns until approved, then
/// the held changes go out one member a request.
#[tokio::test]
async fn a_broken_guardrail_holds_the_group_until_approved() {
    let mut world = World::with_okta(common::sqlite_db(), 150, &[]).await;
    scenarios::a_broken_guardrail_holds_the_group_until_approved(&mut world).await;
}

/// A link takes over an Okta group made by hand (its members stay, one entry each) and is
/// never deleted, even with `on_unpush: delete`; a group rosterd made is.
#[tokio::test]
async fn a_link_takes_over_a_group_and_only_made_groups_are_deleted() {
    let world = World::with_okta(common::sqlite_db(), 100, &[]).await;
    scenarios::a_link_takes_over_a_group_and_only_made_groups_are_deleted(&world).await;
}

/// An OAuth 2.0 service app instead of an API token: rosterd signs a client assertion with
/// the app's private key, gets an access token with the scopes it needs, and pushes with it.
/// A key the app does not have is refused at the token endpoint, and the error says so
/// without the key.
#[tokio::test]
async fn a_service_app_signs_in_with_its_private_key() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public = std::fs::read_to_string(fixtures.join("okta-service-app.pub.pem")).unwrap();
    let options = rosterd::scim::emulator::Options {
        okta_service_app: Some(("0oa-rosterd".into(), public)),
        ..Default::default()
    };
    let world = World::with_okta_options(common::sqlite_db(), 60, &[], options).await;
    let use_key = |key: &str| {
        let path = world.path("rosterd.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let auth = format!(
            "auth: {{ private_key_jwt: {{ client_id: 0oa-rosterd, key_file: {}, key_id: k1 }} }}",
            fixtures.join(key).display()
        );
        let text = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("auth:") {
                    format!("    {auth}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, text + "\n").unwrap();
    };
    use_key("okta-service-app.key");
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;

    use_key("okta-other.key");
    let report = world.sync(reconcile()).await;
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("oauth2/v1/token") && error.contains("invalid_client"),
        "{error}"
    );
    let key = std::fs::read_to_string(fixtures.join("okta-other.key")).unwrap();
    let line = key.lines().nth(1).unwrap();
    assert!(!error.contains(line), "the key is never shown");
}
