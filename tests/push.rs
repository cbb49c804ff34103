//! Push scenarios against the project's SCIM emulator, over real HTTP: initial sync, no-op
//! sync, incremental changes, faults, failsafe holds, drift, lost groups, refused
//! credentials, target quirks, workers without accounts, dry runs and unpushing.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::scenarios;
use common::world::{World, TARGET, TARGET_OPTIONS};
use common::TestDb;
use rosterd::push::Options;
use rosterd::scim::emulator::{FaultKind, Faults, Quirks};
use rosterd::store::{DriftKind, HoldStatus, OutboxStatus, PairAction};

/// The report of one group's push to the world's target.
fn pair(report: &rosterd::push::Report, group: &str) -> rosterd::push::PairReport {
    report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == group)
        .cloned()
        .unwrap_or_else(|| panic!("no group `{group}` in {report:?}"))
}

fn opts() -> Options {
    Options::default()
}

on_both_backends!(
    a_sync_with_nothing_changed_sends_no_write,
    changes_are_pushed_as_deltas,
    a_mass_removal_is_held_until_approved,
    a_reconcile_repairs_drift,
);

async fn a_sync_with_nothing_changed_sends_no_write(db: TestDb) {
    let world = World::with_emulator(db, 200, &[]).await;
    scenarios::nothing_changed_sends_no_write(&world).await;
    // The emulator's own counts agree with the client's.
    let emu = world.emulator();
    emu.reset_counters(TARGET);
    world.sync(opts()).await;
    let counters = emu.counters(TARGET);
    // No write; the reads are the verification of one group: the group, and a sample of
    // its user ids confirmed with one filter.
    assert_eq!((counters.reads, counters.writes), (2, 0), "{counters:?}");
    assert_eq!(
        counters.group_reads.values().sum::<u64>(),
        1,
        "{counters:?}"
    );
}

async fn changes_are_pushed_as_deltas(db: TestDb) {
    let mut world = World::with_emulator(db, 200, &[]).await;
    scenarios::changes_are_pushed_as_deltas(&mut world).await;
    // The initial sync removed nothing, so these are the change's.
    let counters = world.emulator().counters(TARGET);
    assert_eq!(counters.members_removed, 4);
    assert_eq!(counters.member_list_replaces, 0);
}

async fn a_mass_removal_is_held_until_approved(db: TestDb) {
    let mut world = World::with_emulator(db, 200, &[]).await;
    scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
}

async fn a_reconcile_repairs_drift(db: TestDb) {
    let world = World::with_emulator(db, 200, &[]).await;
    scenarios::a_reconcile_repairs_drift(&world).await;
}

#[tokio::test]
async fn a_sync_converges_while_a_fifth_of_requests_fail() {
    let mut world = World::with_emulator(common::sqlite_db(), 300, &[]).await;
    // Like scim2-server, the target takes a second group of the same name: a POST whose
    // answer was lost must not be sent again blindly.
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            unique_display_names: false,
            ..Quirks::default()
        },
    );
    world
        .emulator()
        .set_faults(TARGET, common::world::a_fifth_failing());
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    assert!(counters.faults > 10, "faults were injected: {counters:?}");
    assert!(report.targets[0].retries > 10);
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| w.division == "Sales").take(5) {
            w.division = "Engineering".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
}

#[tokio::test]
async fn a_group_lost_in_the_target_is_created_again() {
    let mut world = World::with_emulator(common::sqlite_db(), 200, &[]).await;
    world.sync(opts()).await;
    world.emulator().delete_by_hand(TARGET, "sales");
    // Engineering loses as many: the failsafe would hold it.
    world.write_config(
        "",
        &(TARGET_OPTIONS.to_string() + "    failsafe: { max_remove_percent: 100 }\n"),
    );
    // Enough joins for several PATCHes (10 members each): the 404 comes in the middle of a
    // batch, and the rest of it is planned again in the same run, not left pending.
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering")
            .take(25)
        {
            w.division = "Sales".into();
        }
    });
    world.emulator().reset_counters(TARGET);
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    assert_eq!(
        world.emulator().counters(TARGET).by_status.get(&404),
        Some(&1),
        "one 404, then the group is made again"
    );
    let store = world.store().await;
    assert!(store.pending_outbox(TARGET).await.unwrap().is_empty());
    let drift = store.drift(TARGET, "sales").await.unwrap();
    assert_eq!(drift[0].kind, DriftKind::GroupMissing);
    // The entry the 404 answered was planned again, not failed: nothing for status to
    // report as a failure.
    assert!(store
        .outbox(Some(OutboxStatus::Failed), 10)
        .await
        .unwrap()
        .is_empty());
    store.close().await;
    world.assert_one_entry_each().await;
}

/// Scenario 1: a target that stores a member twice when it is added twice, and answers
/// every fourth PATCH only after applying it and after the client's timeout. Resending such
/// an add would hold members twice; the push reads the group back instead, and ends exactly
/// right with one entry per member and nothing pending.
#[tokio::test]
async fn a_patch_that_times_out_after_it_applied_is_read_back_not_sent_again() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            duplicate_on_add: true,
            slow_patch_every: 4,
            slow_answer_ms: 1_500,
            ..Quirks::default()
        },
    );
    world.write_config(
        "",
        &(TARGET_OPTIONS.to_string() + "    timeout_seconds: 1\n"),
    );
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let store = world.store().await;
    assert!(store.pending_outbox(TARGET).await.unwrap().is_empty());
    assert!(store
        .outbox(Some(OutboxStatus::Failed), 10)
        .await
        .unwrap()
        .is_empty());
    let superseded = store
        .outbox(Some(OutboxStatus::Superseded), 100)
        .await
        .unwrap();
    store.close().await;
    assert!(
        superseded.len() >= 2,
        "several answers came too late and were read back: {superseded:?}"
    );
    // The next sync finds nothing to do.
    let next = world.sync(opts()).await;
    assert_eq!(next.targets[0].writes, 0, "{next:?}");
}

#[tokio::test]
async fn refused_credentials_mark_the_target_unhealthy_and_others_go_on() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    let emu = world.emulator();
    // A second target on the same emulator that wants a token we do not have.
    std::env::set_var("ROSTERD_TEST_WRONG_TOKEN", "not-the-token");
    let guarded = rosterd::scim::emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        rosterd::scim::emulator::Options {
            token: Some("the-token".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let extra = "    auth: { bearer: { token_env: ROSTERD_TEST_WRONG_TOKEN } }\n";
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap()
        + &format!("  locked:\n    url: {}\n{extra}", guarded.url("locked"));
    std::fs::write(world.path("rosterd.yaml"), config).unwrap();
    std::fs::write(
        world.path("rules/locked.yaml"),
        "groups:\n  - name: locked-everyone\n    kind: managed\n    rule: status == \"Active\"\n    push: [locked]\n",
    )
    .unwrap();
    let report = world.sync(opts()).await;
    let locked = report
        .targets
        .iter()
        .find(|t| t.target == "locked")
        .unwrap();
    let error = locked.error.as_deref().unwrap();
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(
        !error.contains("not-the-token"),
        "no secret in messages: {error}"
    );
    assert_eq!(guarded.counters("locked").writes, 0);
    world.assert_converged(&[]).await;
    assert!(emu.counters(TARGET).applied_writes > 0);
    let store = world.store().await;
    let health = store.target_health().await.unwrap();
    let locked = health.iter().find(|h| h.target == "locked").unwrap();
    assert!(!locked.healthy);
    assert!(health.iter().find(|h| h.target == TARGET).unwrap().healthy);
}

#[tokio::test]
async fn target_quirks_are_respected() {
    let mut world = World::with_emulator(common::sqlite_db(), 200, &[]).await;
    // A target that takes one member change per request, removes by value list only, and
    // compares userNames case-sensitively while the HR emails are mixed case.
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            no_filtered_paths: true,
            value_list_removal: true,
            max_members_per_request: Some(3),
            case_sensitive_user_name: true,
            max_page_size: 50,
            unique_display_names: true,
            strict_removal: false,
            ..Quirks::default()
        },
    );
    world.write_config(
        "",
        &TARGET_OPTIONS.replace(
            "patch: { max_members_per_request: 10 }",
            "patch: { remove: value_list, max_members_per_request: 3 }\n    user_match: { lookup: list }\n    page_size: 500",
        ),
    );
    world.edit_workers(|workers| {
        for w in workers.iter_mut().step_by(3) {
            w.email = w.email.to_uppercase();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering")
            .take(4)
        {
            w.division = "Sales".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    assert_eq!(
        counters.by_status.get(&400),
        None,
        "no request broke a quirk: {counters:?}"
    );
}

#[tokio::test]
async fn workers_without_an_account_are_listed_and_picked_up_later() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    // Accounts for everyone but two engineers.
    let config = world.config();
    let missing: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Engineering" && w.status == "Active")
        .take(2)
        .map(|w| w.email.clone())
        .collect();
    drop(config);
    let without: Vec<&str> = missing.iter().map(String::as_str).collect();
    let world = World::with_emulator(world.db, 100, &without).await;
    let report = world.sync(opts()).await;
    world.assert_converged(&without).await;
    let engineering = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "engineering")
        .unwrap();
    assert_eq!(engineering.unprovisioned, 2);
    let store = world.store().await;
    let listed: Vec<String> = store
        .unprovisioned()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.group == "engineering")
        .filter_map(|u| u.match_value)
        .collect();
    assert_eq!(
        listed.iter().collect::<std::collections::BTreeSet<_>>(),
        missing.iter().collect()
    );
    store.close().await;
    // The accounts appear: the next sync adds them.
    for email in &missing {
        world.add_account(email).await;
    }
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    let store = world.store().await;
    assert!(store
        .unprovisioned()
        .await
        .unwrap()
        .iter()
        .all(|u| u.group != "engineering"));
}

#[tokio::test]
async fn a_dry_run_prints_the_requests_and_changes_nothing() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    let report = world
        .sync(Options {
            dry_run: true,
            ..opts()
        })
        .await;
    let emu = world.emulator();
    assert_eq!(emu.counters(TARGET).writes, 0);
    assert!(emu.groups(TARGET).is_empty());
    let sales = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert!(
        sales.requests[0].starts_with(&format!("POST {}/Groups\n", world.url())),
        "{}",
        sales.requests[0]
    );
    assert!(sales.requests[0].contains("\"displayName\": \"sales\""));
    let store = world.store().await;
    assert!(
        store.target_groups(TARGET).await.unwrap().is_empty(),
        "a dry run records nothing"
    );
    assert!(store.outbox(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn renames_inactive_pushes_and_unpushing_follow_the_rules() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    world.write_config(
        "",
        &(TARGET_OPTIONS.to_string()
            + "    on_unpush: delete\n    failsafe: { max_remove_percent: 100 }\n"),
    );
    world.sync(opts()).await;
    let rules = common::world::RULES
        .replace("display_name: People Managers", "display_name: Managers")
        .replace("    rule: division == \"Sales\"\n    push: [app]", "    rule: division == \"Sales\"\n    push: [{ target: app, active: false }]")
        .replace("  - name: everyone\n    kind: managed\n    rule: status == \"Active\"\n    push: [app]\n", "");
    std::fs::write(world.path("rules/groups.yaml"), rules).unwrap();
    let emu = world.emulator();
    let before = emu.groups(TARGET);
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let after = emu.groups(TARGET);
    assert_eq!(
        after.get("Managers"),
        before.get("People Managers"),
        "renamed, members kept"
    );
    assert!(!after.contains_key("People Managers"));
    assert_eq!(
        after.get("sales"),
        before.get("sales"),
        "an inactive push leaves the group alone"
    );
    assert!(
        !after.contains_key("everyone"),
        "unpushed with on_unpush: delete"
    );
    let actions: Vec<(String, Option<PairAction>)> = report.targets[0]
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.action))
        .collect();
    assert!(
        actions.contains(&("sales".into(), Some(PairAction::Inactive))),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("everyone".into(), Some(PairAction::Deleted))),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_refused_change_is_recorded_with_the_targets_reason() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    world.sync(opts()).await;
    // The target now refuses filtered paths, but the config still uses them.
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            no_filtered_paths: true,
            ..Quirks::default()
        },
    );
    let mut world = world;
    world.edit_workers(|workers| {
        let w = workers
            .iter_mut()
            .find(|w| w.division == "Sales" && w.status == "Active")
            .unwrap();
        w.division = "Marketing".into();
    });
    let report = world.sync(opts()).await;
    let sales = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert!(
        sales
            .error
            .as_deref()
            .unwrap()
            .contains("HTTP 400 (invalidPath)"),
        "{sales:?}"
    );
    let store = world.store().await;
    let failed = store.outbox(Some(OutboxStatus::Failed), 10).await.unwrap();
    assert_eq!(failed[0].scim_type.as_deref(), Some("invalidPath"));
    assert!(failed[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("filtered paths are not supported"));
    // The console's group page reads a group's newest refusal on its own, however old.
    let last = store.last_failure(TARGET, "sales").await.unwrap().unwrap();
    let newest = failed.iter().find(|f| f.group == "sales").unwrap();
    assert_eq!(last.id, newest.id);
    assert!(store
        .last_failure(TARGET, "engineering")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn oauth2_client_credentials_are_fetched_and_never_shown() {
    let options = rosterd::scim::emulator::Options {
        token: Some("a-static-token-rosterd-does-not-have".into()),
        oauth_client: Some(("rosterd".into(), "client-s3cret-value".into())),
        ..Default::default()
    };
    let world = World::with_emulator_options(common::sqlite_db(), 100, &[], options).await;
    let auth = |var: &str| {
        format!(
            "    auth: {{ oauth2: {{ token_url: {}/oauth/token, client_id: rosterd, client_secret_env: {var} }} }}\n",
            world.url()
        )
    };
    std::env::set_var("ROSTERD_TEST_OAUTH_SECRET", "client-s3cret-value");
    std::env::set_var("ROSTERD_TEST_OAUTH_WRONG", "wrong-s3cret-value");
    world.write_config("", &(auth("ROSTERD_TEST_OAUTH_SECRET") + TARGET_OPTIONS));
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.write_config("", &(auth("ROSTERD_TEST_OAUTH_WRONG") + TARGET_OPTIONS));
    let report = world
        .sync(Options {
            reconcile: true,
            ..opts()
        })
        .await;
    let error = report.targets[0].error.as_deref().unwrap();
    assert!(
        error.contains("OAuth2 token from") && error.contains("HTTP 401"),
        "{error}"
    );
    let shown = format!("{report:?}");
    assert!(!shown.contains("s3cret"), "a secret in the report: {shown}");
}

#[tokio::test]
async fn requests_are_paced_to_the_targets_rate() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    world.write_config(
        "",
        &TARGET_OPTIONS.replace("requests_per_second: 5000", "requests_per_second: 50"),
    );
    world.sync(opts()).await;
    let arrivals = world.emulator().arrivals(TARGET);
    assert!(arrivals.len() >= 10, "{} requests", arrivals.len());
    // 50 per second: request starts are at least 20 ms apart, whatever the concurrency.
    let span = *arrivals.last().unwrap() - arrivals[0];
    let least = std::time::Duration::from_millis(20 * (arrivals.len() as u64 - 1) * 9 / 10);
    assert!(
        span >= least,
        "{} requests in {span:?}, expected at least {least:?}",
        arrivals.len()
    );
}

/// The CLI end to end: dry run, sync, a held push (exit 3), status, approve, and a bearer
/// token that never shows, not even in debug logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pushes_holds_and_approves_without_showing_the_token() {
    let token = "tok-9f3c2a7e51d4";
    let options = rosterd::scim::emulator::Options {
        token: Some(token.into()),
        ..Default::default()
    };
    let mut world = World::with_emulator_options(common::sqlite_db(), 200, &[], options).await;
    world.write_config(
        "",
        &("    auth: { bearer: { token_env: ROSTERD_TEST_CLI_TOKEN } }\n".to_string()
            + TARGET_OPTIONS),
    );
    let config = world.path("rosterd.yaml");
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("--config")
            .arg(&config)
            .args(common::as_of_for(&args, "2026-11-22"))
            .args(args)
            .env("ROSTERD_TEST_CLI_TOKEN", token)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "the token was shown:\n{stdout}\n{stderr}"
        );
        (out.status.code().unwrap(), stdout, stderr)
    };
    let run = std::sync::Arc::new(run);
    let cli = |args: &[&str]| {
        let run = std::sync::Arc::clone(&run);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || run(args))
                .await
                .unwrap()
        }
    };
    let (code, stdout, stderr) = cli(&["sync", "--dry-run"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("POST {}/Groups", world.url())),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"displayName\": \"People Managers\""),
        "{stdout}"
    );
    assert_eq!(world.emulator().counters(TARGET).writes, 0);
    let (code, _, stderr) = cli(&["sync"]).await;
    assert_eq!(code, 0, "{stderr}");
    world.assert_converged(&[]).await;
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering")
            .step_by(2)
        {
            w.division = "Operations".into();
        }
    });
    let (code, stdout, _) = cli(&["sync"]).await;
    assert_eq!(code, 3, "held: {stdout}");
    assert!(stdout.contains("held: the push would remove"), "{stdout}");
    let id: String = stdout
        .split("rosterd approve push ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let (_, status, _) = cli(&["status"]).await;
    assert!(
        status.contains(&format!("hold {id} (held) on engineering")),
        "{status}"
    );
    // An approver judges the hold by who would leave, and why.
    let (code, list, _) = cli(&["holds"]).await;
    assert_eq!(code, 0, "{list}");
    assert!(
        list.contains(&format!("hold {id} (held): engineering → app, +0 -")),
        "{list}"
    );
    let (code, json, _) = cli(&["--format", "json", "holds", &id]).await;
    assert_eq!(code, 0, "{json}");
    let detail: serde_json::Value = serde_json::from_str(&json).unwrap();
    let leaving = detail["leaving"].as_array().unwrap();
    assert_eq!(
        leaving.len() as u64,
        detail["hold"]["to_remove"].as_u64().unwrap(),
        "{detail}"
    );
    for p in leaving {
        assert!(
            p["why"].as_str().unwrap().starts_with("left in run "),
            "{p}"
        );
        assert!(p["email"].as_str().unwrap().contains('@'), "{p}");
        assert!(p["name"].is_string(), "{p}");
    }
    let (code, text, _) = cli(&["holds", &id]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("would leave ({}):", leaving.len())),
        "{text}"
    );
    assert!(
        text.contains(&format!("rosterd approve push {id}")),
        "{text}"
    );
    let (code, _, stderr) = cli(&["holds", "999"]).await;
    assert_eq!(code, 2, "{stderr}");
    // Who was in the group today, by the rules, is not what the target held: it says so.
    let today = rosterd::clock::today_utc().to_string();
    let (code, history, _) = cli(&["history", "engineering", "--at", &today]).await;
    assert_eq!(code, 0, "{history}");
    assert!(
        history.contains(&format!(
            "note: on {today} the push to `app` was held (hold {id}, since "
        )) && history.contains("and still is"),
        "{history}"
    );
    let (code, _, stderr) = cli(&["approve", "push", "999"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("no push hold 999"), "{stderr}");
    let (code, stdout, _) = cli(&["approve", "push", &id]).await;
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = cli(&["sync"]).await;
    assert_eq!(code, 0, "{stdout}");
    world.assert_converged(&[]).await;
    let (code, stdout, _) = cli(&["sync"]).await;
    assert_eq!(code, 0, "{stdout}");

    // One account of each run: held, then the approved removals sent (with nothing to
    // evaluate), then nothing to do.
    let (_, json, _) = cli(&["--format", "json", "runs", "--limit", "3"]).await;
    let runs: serde_json::Value = serde_json::from_str(&json).unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["nothing_to_do", "succeeded", "succeeded_with_held_pushes"],
        "{runs}"
    );
    let held = runs[2]["outcome_reason"].as_str().unwrap();
    assert!(
        held.contains("1 push held until approved: engineering → app"),
        "{held}"
    );
    assert!(
        runs[1]["pushed"][TARGET]["removed"].as_u64().unwrap() > 0,
        "the run that sent the approved removals says so: {runs}"
    );
    let (_, text, _) = cli(&["runs", "--limit", "3"]).await;
    assert!(text.contains("succeeded_with_held_pushes"), "{text}");
}

#[tokio::test]
async fn a_lost_answer_never_makes_a_second_group() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    let emu = world.emulator();
    emu.set_quirks(
        TARGET,
        Quirks {
            unique_display_names: false,
            ..Quirks::default()
        },
    );
    // Half of the writes are applied and then their answer is lost.
    emu.set_faults(TARGET, answers_lost(0.5));
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(emu.counters(TARGET).faults >= 2);
    world.assert_converged(&[]).await;
}

#[tokio::test]
async fn a_link_takes_over_an_existing_group_and_is_never_deleted() {
    let world = World::with_emulator(common::sqlite_db(), 100, &[]).await;
    world.write_config(
        "",
        &(TARGET_OPTIONS.to_string() + "    on_unpush: delete\n"),
    );
    let sales: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Sales" && w.status == "Active")
        .map(|w| w.email.clone())
        .collect();
    // Members the rules want, past the create's first batch: they are the target's already
    // and stay, one entry each.
    let some: Vec<&str> = sales.iter().rev().take(2).map(String::as_str).collect();
    world
        .emulator()
        .create_by_hand(TARGET, "Sales Team (HR)", &some);
    let rules = common::world::RULES.replace(
        "    rule: division == \"Sales\"\n    push: [app]",
        "    rule: division == \"Sales\"\n    push: [{ target: app, display_name: sales, link: Sales Team (HR) }]",
    );
    std::fs::write(world.path("rules/groups.yaml"), &rules).unwrap();
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let sales_report = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert_eq!(sales_report.action, Some(PairAction::Linked));
    let groups = world.emulator().groups(TARGET);
    let want: std::collections::BTreeSet<String> = sales.iter().map(|e| e.to_lowercase()).collect();
    assert_eq!(groups["Sales Team (HR)"], want);
    assert!(
        !groups.contains_key("sales"),
        "a linked group is not created or renamed"
    );
    // The group leaves the rules: a linked group is only unlinked, even with on_unpush: delete.
    std::fs::write(
        world.path("rules/groups.yaml"),
        rules
            .replace("  - name: sales\n", "  - name: sales\n    description: x\n")
            .replace(
                "push: [{ target: app, display_name: sales, link: Sales Team (HR) }]",
                "push: []",
            ),
    )
    .unwrap();
    let report = world.sync(opts()).await;
    let sales_report = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert_eq!(sales_report.action, Some(PairAction::Unlinked));
    assert!(world
        .emulator()
        .groups(TARGET)
        .contains_key("Sales Team (HR)"));
}

/// The emulator applies a PATCH whole or not at all (RFC 7644 section 3.5.2), and counts only
/// the net change: the push tests' request counts rely on both.
#[tokio::test]
async fn the_emulator_applies_a_patch_whole_or_not_at_all() {
    let world = World::with_emulator(common::sqlite_db(), 60, &[]).await;
    world.sync(opts()).await;
    let emu = world.emulator();
    let before = emu.groups(TARGET);
    let (name, members) = before.iter().find(|(_, m)| m.len() >= 2).unwrap();
    let http = reqwest::Client::new();
    let base = world.url();
    let get = |request: reqwest::RequestBuilder| async move {
        let text = request.send().await.unwrap().text().await.unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let list = get(http
        .get(format!("{base}/Groups"))
        .query(&[("filter", format!("displayName eq \"{name}\""))]))
    .await;
    let id = list["Resources"][0]["id"].as_str().unwrap().to_string();
    let group = get(http.get(format!("{base}/Groups/{id}"))).await;
    let first = group["members"][0]["value"].as_str().unwrap().to_string();
    let patch = |ops: serde_json::Value| {
        http.patch(format!("{base}/Groups/{id}"))
            .header("content-type", "application/scim+json")
            .body(
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": ops,
                })
                .to_string(),
            )
            .send()
    };
    emu.reset_counters(TARGET);
    // A removal, a rename, then an operation the emulator refuses: nothing may stick.
    let refused = patch(serde_json::json!([
        { "op": "remove", "path": format!("members[value eq \"{first}\"]") },
        { "op": "replace", "path": "displayName", "value": "renamed" },
        { "op": "replace", "path": "displayName", "value": 7 },
    ]))
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(&emu.groups(TARGET), &before);
    // Removing a member and adding it back is no change at all.
    let applied = patch(serde_json::json!([
        { "op": "remove", "path": format!("members[value eq \"{first}\"]") },
        { "op": "add", "path": "members", "value": [{ "value": first }] },
    ]))
    .await
    .unwrap();
    assert_eq!(applied.status(), 204);
    assert_eq!(emu.groups(TARGET).get(name), Some(members));
    let counters = emu.counters(TARGET);
    assert_eq!((counters.members_added, counters.members_removed), (0, 0));
}

/// Adds and removes share a PATCH where they meet. When a target refuses such a PATCH
/// because one of its removals is gone already (400 noTarget, the whole request undone),
/// the additions and the removals are sent apart, and the group still converges.
#[tokio::test]
async fn a_shared_patch_refused_for_a_member_gone_by_hand_is_sent_apart() {
    let mut world = World::with_emulator(common::sqlite_db(), 200, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            strict_removal: true,
            ..Quirks::default()
        },
    );
    world.sync(opts()).await;
    // A second sync verifies engineering (the first of the groups verified longest ago), so
    // the sync below reads another one back and plans engineering on what it knows.
    let report = world.sync(opts()).await;
    assert!(pair(&report, "engineering").verified, "{report:?}");
    let engineering_id = pair(&report, "engineering").scim_id.unwrap();
    let engineer = |w: &rosterd::directory::generate::Worker| {
        w.division == "Engineering" && w.status == "Active"
    };
    let leaver = world.workers.iter().find(|w| engineer(w)).unwrap().clone();
    // Someone removes the leaver in the target by hand before rosterd does.
    world
        .edit_by_hand("engineering", &[], &[&leaver.email])
        .await;
    world.edit_workers(|workers| {
        let joiner = workers
            .iter_mut()
            .find(|w| w.division == "Sales" && w.status == "Active")
            .unwrap();
        joiner.division = "Engineering".into();
        let leaver = workers.iter_mut().find(|w| w.id == leaver.id).unwrap();
        leaver.division = "Sales".into();
    });
    world.emulator().reset_counters(TARGET);
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let counters = world.emulator().counters(TARGET);
    // Sales: one shared PATCH (the leaver in, the joiner out), 204. Engineering: the shared
    // PATCH, 400; then the addition alone, 204, and the removal alone, 400 noTarget, which
    // leaves the group as wanted. (The reads, 200, verify another group and confirm the
    // ids to add.)
    let mut writes = counters.by_status.clone();
    writes.remove(&200);
    assert_eq!(
        writes,
        std::collections::BTreeMap::from([(204, 2), (400, 2)]),
        "{counters:?}"
    );
    assert!(
        !counters.group_reads.contains_key(&engineering_id),
        "engineering is planned on what is known: {counters:?}"
    );
    let store = world.store().await;
    let done = store.outbox(Some(OutboxStatus::Done), 1000).await.unwrap();
    let update = done
        .iter()
        .find(|e| e.group == "engineering" && e.action == rosterd::store::OutboxAction::Update)
        .expect("engineering's add and remove shared one entry");
    // The store keeps the counts of an entry's changes, not the members.
    assert_eq!((update.payload.added, update.payload.removed), (1, 1));
    // `attempts` counts the requests sent for an entry: the shared one and its two halves.
    assert_eq!(update.attempts, 3);
    let others: Vec<_> = done
        .iter()
        .filter(|e| e.id != update.id)
        .map(|e| e.attempts)
        .collect();
    assert!(
        others.iter().all(|&a| a == 1),
        "one request each: {others:?}"
    );
    assert!(store
        .outbox(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap()
        .is_empty());
}

/// `rosterd` with the world's config; (exit code, stdout, stderr).
fn run_cli(world: &World, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(world.path("rosterd.yaml"))
        .args(args)
        .args(common::as_of_for(args, "2026-11-22"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn status_shows_a_target_that_cannot_be_reached_and_what_it_has_not_confirmed() {
    let mut world = World::with_emulator(common::sqlite_db(), 120, &[]).await;
    world.sync(opts()).await;
    let movers: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Engineering" && w.status == "Active")
        .take(3)
        .map(|w| w.id.clone())
        .collect();
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| movers.contains(&w.id)) {
            w.division = "Sales".into();
        }
    });
    // The target moves away: nothing listens where the config points now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    world.write_config("", &TARGET_OPTIONS.replace("retries: 12", "retries: 1"));
    let config = std::fs::read_to_string(world.path("rosterd.yaml"))
        .unwrap()
        .replace(&world.url(), &format!("http://127.0.0.1:{port}/app"));
    std::fs::write(world.path("rosterd.yaml"), config).unwrap();
    // Nothing here needs the emulator any more: blocking on the commands is fine.
    let (code, stdout, stderr) = run_cli(&world, &["sync"]);
    assert_eq!(code, 4, "the push failed: {stdout}\n{stderr}");
    // Attempts are counted as sent; the line says none was served.
    assert!(stdout.contains(", none of them served"), "{stdout}");
    let (_, json, _) = run_cli(&world, &["--format", "json", "runs", "--limit", "1"]);
    let runs: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(runs[0]["outcome"], "failed", "{runs}");
    let reason = runs[0]["outcome_reason"].as_str().unwrap();
    assert!(reason.starts_with("the push failed at app: "), "{reason}");
    let (code, json, stderr) = run_cli(&world, &["status", "--format", "json"]);
    assert_eq!(code, 5, "not healthy: {stderr}");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let app = &status[TARGET];
    assert_eq!(app["healthy"], false, "{app}");
    assert_eq!(app["health"]["state"], "unreachable", "{app}");
    // The movers' joins to sales and leaves from engineering are stored, not confirmed.
    assert_eq!(app["unsent"]["sales"]["joins"], 3, "{app}");
    assert_eq!(app["unsent"]["engineering"]["leaves"], 3, "{app}");
    let first: Vec<&str> = app["unsent"]["sales"]["first"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    assert!(
        first.iter().all(|k| movers.iter().any(|m| m == k)),
        "{first:?}"
    );
    let (_, text, _) = run_cli(&world, &["status"]);
    assert!(text.contains("app: unhealthy"), "{text}");
    assert!(
        text.contains("sales: 3 joins and 0 leaves stored but not confirmed by the target"),
        "{text}"
    );
    // A reconcile is recorded as one, as the daemon's are.
    run_cli(&world, &["sync", "--reconcile"]);
    let (_, json, _) = run_cli(&world, &["--format", "json", "runs", "--limit", "1"]);
    let runs: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(runs[0]["kind"], "reconcile", "{runs}");
}

/// A share of the writes applied, and their answers lost.
fn answers_lost(rate: f64) -> Faults {
    Faults {
        rate,
        kinds: vec![FaultKind::DropAfterApply],
        only_writes: true,
        ..Faults::default()
    }
}

fn quirks(accept_unknown_members: bool, duplicate_on_add: bool) -> Quirks {
    Quirks {
        accept_unknown_members,
        duplicate_on_add,
        ..Quirks::default()
    }
}

#[tokio::test]
async fn a_lost_answer_to_an_add_is_read_back_not_sent_again_on_a_target_that_duplicates() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    let emu = world.emulator();
    emu.set_quirks(TARGET, quirks(true, true));
    // A third of the writes are applied and their answer is lost: resending one would add
    // its members a second time.
    emu.set_faults(TARGET, answers_lost(0.33));
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(emu.counters(TARGET).faults >= 2);
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let store = world.store().await;
    assert!(store.pending_outbox(TARGET).await.unwrap().is_empty());
}

/// Scenario 2 against the emulator acting out a target that keeps deleted users' ids, and
/// answers each page of a listing slowly (the reconcile lists every user).
#[tokio::test]
async fn one_reconcile_heals_a_target_whose_users_were_all_created_again() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    world.emulator().set_quirks(
        TARGET,
        Quirks {
            slow_pages_ms: 150,
            ..quirks(true, false)
        },
    );
    scenarios::one_reconcile_heals_recreated_users(&world).await;
}

/// Scenario 3 against the emulator acting out a target that stores a member twice.
#[tokio::test]
async fn a_reconcile_removes_duplicates_and_ids_that_are_no_users() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    world.emulator().set_quirks(TARGET, quirks(true, true));
    scenarios::a_reconcile_removes_duplicates_and_unknown_ids(&world).await;
}

/// Scenario 5: HR emails that differ from the target's userNames in case only, the default
/// `lookup: auto`, and so few workers to look up that filters would be used. A target whose
/// filters compare userName case-sensitively would answer them with nothing; rosterd learns
/// that from its /Schemas (or, when it publishes none, by probing once), lists its users
/// instead and finds every account. A target that compares case-insensitively keeps filters.
#[tokio::test]
async fn case_variant_user_names_are_found_with_the_default_lookup() {
    // (case-sensitive filters, no /Schemas, /Schemas says case-insensitive whatever the
    // filters do) → what is learned: (case_exact, source)
    let cases = [
        ((true, false, false), (true, "schemas")),
        ((true, true, false), (true, "probe")),
        ((false, false, false), (false, "schemas")),
        ((false, true, false), (false, "probe")),
        // Verification (3): its description is wrong, and the probe says so.
        ((true, false, true), (true, "probe (contradicts /Schemas)")),
    ];
    for ((case_sensitive, no_discovery, lies), (case_exact, source)) in cases {
        let what = format!(
            "case-sensitive {case_sensitive}, no /Schemas {no_discovery}, /Schemas lies {lies}"
        );
        let mut world = World::with_emulator(common::sqlite_db(), 120, &[]).await;
        world.emulator().set_quirks(
            TARGET,
            Quirks {
                case_sensitive_user_name: case_sensitive,
                no_discovery,
                schemas_lie_case_exact: lies,
                ..Quirks::default()
            },
        );
        scenarios::case_variant_user_names_are_found(&mut world).await;

        let store = world.store().await;
        let learned = store
            .target_lookups()
            .await
            .unwrap()
            .remove(TARGET)
            .unwrap();
        store.close().await;
        assert_eq!(
            (learned.case_exact, learned.source.as_str()),
            (case_exact, source),
            "{what}"
        );
        assert_eq!(learned.attribute, "userName");
        if case_sensitive && !no_discovery {
            let (code, text, stderr) = run_cli(&world, &["status"]);
            assert_eq!(code, 0, "{text}{stderr}");
            let why = if lies {
                "found by probing, although its /Schemas says its filters ignore case"
            } else {
                "the target's /Schemas says so"
            };
            assert!(
                text.contains(&format!("user lookup: auto: lists the users (userName compares case-sensitively in its filters: {why}")),
                "{text}"
            );
        }
    }
}

/// A target that deleted two users and created them again under new ids, and refuses the
/// old ids (as the emulator does by default): the sync that moves them into another group
/// confirms their cached ids before it adds them, finds them unknown, and verifies the whole
/// target in the same run. Nothing is refused, no id that is no user is sent, and the two
/// are added by their new ids in the same run.
#[tokio::test]
async fn a_user_id_the_target_no_longer_knows_is_never_sent() {
    let mut world = World::with_emulator(common::sqlite_db(), 120, &[]).await;
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let movers: Vec<(String, String)> = world
        .workers
        .iter()
        .filter(|w| w.division == "Engineering" && w.status == "Active")
        .take(2)
        .map(|w| (w.id.clone(), w.email.clone()))
        .collect();
    for (_, email) in &movers {
        world.emulator().recreate_user(TARGET, email);
    }
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| movers.iter().any(|(id, _)| id == &w.id))
        {
            w.division = "Sales".into();
        }
    });
    world.emulator().reset_counters(TARGET);
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let counters = world.emulator().counters(TARGET);
    assert_eq!(
        counters.by_status.get(&400),
        None,
        "nothing is refused: {counters:?}"
    );
    let reset = report.targets[0].reset.as_deref().unwrap_or_default();
    assert!(reset.contains("2 cached user ids are no users"), "{reset}");
    let expected = world.expected(&[]).await;
    let actual = world.actual().await;
    assert_eq!(
        actual["sales"], expected["sales"],
        "sales is right in the same run"
    );
    let store = world.store().await;
    assert!(store
        .outbox(Some(OutboxStatus::Failed), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .outbox(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap()
        .is_empty());
    store.close().await;

    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
}

/// A long `rosterd sync` says how far it is: on a terminal as bars, otherwise (as here) as
/// a line per target once the push has run a second, then every ten seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_sync_shows_its_progress() {
    let world = World::with_emulator(common::sqlite_db(), 120, &[]).await;
    world.emulator().set_faults(
        TARGET,
        Faults {
            latency_ms: 150,
            ..Faults::default()
        },
    );
    let config = world.path("rosterd.yaml");
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("--config")
            .arg(config)
            .args(["sync", "--as-of", "2026-11-22"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("progress: app: "))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.contains(" requests sent, "), "{line}");
    assert!(line.contains(" members changed"), "{line}");
    eprintln!("{line}");
    world.assert_converged(&[]).await;
}

on_both_backends!(a_broken_guardrail_holds_the_groups_involved_until_approved);

/// Guardrails against an HR change: two engineers move to Sales, which breaks a `hold` size
/// guardrail on `sales` and a `warn` one on `engineering`. The run's push holds `sales` (the
/// group involved) and pushes `engineering` (which only warns); the violations show in the
/// run's outcome and in `rosterd status`. Approving the hold releases it: the next sync sends
/// the two joins, and a sync after that has nothing to hold.
async fn a_broken_guardrail_holds_the_groups_involved_until_approved(db: TestDb) {
    let mut world = World::with_emulator(db, 150, &[]).await;
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 0, "{report:?}");
    let expected = world.expected(&[]).await;
    let (sales, engineering) = (expected["sales"].len(), expected["engineering"].len());
    std::fs::write(
        world.path("rules/guardrails.yaml"),
        format!(
            "guardrails:\n  - name: sales-size\n    group: sales\n    max_members: {sales}\n  - name: engineering-size\n    group: engineering\n    min_members: {engineering}\n    on_violation: warn\n"
        ),
    )
    .unwrap();
    let movers: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Engineering" && w.status == "Active")
        .take(2)
        .map(|w| w.id.clone())
        .collect();
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| movers.contains(&w.id)) {
            w.division = "Sales".into();
        }
    });
    let before = world.actual().await;
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 1, "{report:?}");
    let held = pair(&report, "sales").held.unwrap();
    assert!(
        held.reason.contains(&format!(
            "guardrail `sales-size` is violated: `sales` has {} members, more than {sales}",
            sales + 2
        )),
        "{}",
        held.reason
    );
    // The group involved is held; the one that only warns is pushed.
    let expected = world.expected(&[]).await;
    let actual = world.actual().await;
    assert_eq!(actual["sales"], before["sales"], "sales is held");
    assert_eq!(
        actual["engineering"], expected["engineering"],
        "engineering is pushed"
    );

    let (code, text, stderr) = run_cli(&world, &["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("guardrail `sales-size` is violated (holds changes to sales)"),
        "{text}"
    );
    assert!(
        text.contains("guardrail `engineering-size` is violated (warns about engineering)"),
        "{text}"
    );

    let store = world.store().await;
    let holds = store.push_holds(Some(HoldStatus::Held)).await.unwrap();
    store.close().await;
    assert_eq!(holds.len(), 1, "{holds:?}");
    // Approved from the command line: the approval records who.
    let approve = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(world.path("rosterd.yaml"))
        .args(["approve", "push", &holds[0].id.to_string()])
        .env("USER", "corpsec-alice")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&approve.stdout);
    assert!(approve.status.success(), "{said}");
    assert!(said.contains("as cli:corpsec-alice"), "{said}");
    let (_, text, _) = run_cli(&world, &["status"]);
    assert!(
        text.contains(&format!(
            "hold {} (approved by cli:corpsec-alice at ",
            holds[0].id
        )),
        "{text}"
    );
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 0, "{report:?}");
    assert_eq!(pair(&report, "sales").added, 2, "{report:?}");
    world.assert_converged(&[]).await;
    let store = world.store().await;
    let released = store.push_holds(None).await.unwrap();
    store.close().await;
    assert_eq!(released[0].status, HoldStatus::Released);
    assert_eq!(
        released[0].approved_by.as_deref(),
        Some("cli:corpsec-alice")
    );
    // The guardrail is still broken, but nothing is left to hold.
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 0, "{report:?}");
    assert_eq!(report.targets[0].writes, 0, "{report:?}");
}

#[tokio::test]
async fn verification_heals_recreated_users_after_a_change_in_one_plain_sync() {
    let mut world = World::with_emulator_options(
        common::sqlite_db(),
        150,
        &[],
        rosterd::scim::emulator::Options {
            quirks: quirks(true, false),
            ..Default::default()
        },
    )
    .await;
    scenarios::recreated_users_then_a_change_heal_in_one_plain_sync(&mut world).await;
}

#[tokio::test]
async fn verification_rebuilds_a_target_restarted_empty_in_one_plain_sync() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    scenarios::a_target_restarted_empty_is_rebuilt_in_one_plain_sync(&world).await;
    // `status` says so: healthy, every group read back (its creation answered what it
    // holds), and the sign that made it verify the whole target.
    let (code, text, stderr) = run_cli(&world, &["status"]);
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.contains("app: healthy since"), "{text}");
    assert!(text.contains("last sign that it lost state"), "{text}");
    assert!(!text.contains("never read back"), "{text}");
}

#[tokio::test]
async fn verification_names_back_a_group_renamed_by_hand() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
}

/// `status` is not healthy while a group is unverified or drifted, and says which.
#[tokio::test]
async fn status_is_healthy_only_for_what_was_read_back() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    world.sync(opts()).await;
    let (code, text, _) = run_cli(&world, &["status"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("read back "), "{text}");
    // A group the target holds that was never read back: the store forgets its reads.
    let store = world.store().await;
    let pool_url = world.db.url.clone();
    store.close().await;
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&pool_url)
        .await
        .unwrap();
    sqlx::query("UPDATE target_groups SET verified_at = NULL WHERE group_name = 'sales'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (code, text, _) = run_cli(&world, &["status"]);
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains("app: unverified: 1 group not read back within verify_every (sales)"),
        "{text}"
    );
    assert!(text.contains("sales → \"sales\""), "{text}");
    assert!(text.contains("never read back"), "{text}");
    // Drift found by a verification and not repaired (the repair is held): drifted.
    sqlx::query(
        "UPDATE target_groups SET verified_at = '2999-01-01T00:00:00.000Z', verify_state = 'drifted', verified_drift = 2 WHERE group_name = 'sales'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (code, text, _) = run_cli(&world, &["status"]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("app: drifted: 1 group differ"), "{text}");
}

/// Verification (5): a reconcile of a 20,000-user target whose users were all re-created
/// (its groups keeping the old ids) sends at most 1.2 times the fewest requests it could,
/// and reads no group more than twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_after_every_user_was_recreated_costs_its_requests() {
    let world = World::with_emulator_options(
        common::sqlite_db(),
        20_000,
        &[],
        rosterd::scim::emulator::Options {
            quirks: quirks(true, false),
            ..Default::default()
        },
    )
    .await;
    world.write_config(
        "",
        &TARGET_OPTIONS.replace(
            "max_members_per_request: 10",
            "max_members_per_request: 100",
        ),
    );
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    let before: std::collections::BTreeMap<String, usize> = world
        .entries()
        .await
        .0
        .into_iter()
        .map(|(g, ids)| (g, ids.len()))
        .collect();
    world.emulator().recreate_all_users(TARGET);
    world.emulator().reset_counters(TARGET);
    let report = world
        .sync(Options {
            reconcile: true,
            ..opts()
        })
        .await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let counters = world.emulator().counters(TARGET);
    // The fewest: the users listed (100 a page), each group read once, and each group's
    // stale ids removed and new ones added, 100 changes a request.
    let pages = 20_000_u64.div_ceil(100);
    let groups = before.len() as u64;
    let patches: u64 = before.values().map(|&n| (2 * n as u64).div_ceil(100)).sum();
    let minimum = pages + groups + patches;
    let sent = counters.reads + counters.writes;
    assert!(
        sent as f64 <= 1.2 * minimum as f64,
        "{sent} requests, the fewest {minimum}: {counters:?}"
    );
    let most = counters.group_reads.values().max().copied().unwrap_or(0);
    assert!(most <= 2, "a group was read {most} times: {counters:?}");
}

/// A target that promises a billion users and serves one a page is read no further than
/// `max_list_pages` pages, or than `list_deadline_seconds` allow; the workers are then looked
/// up one by one and the push completes. (Read to the end, the listing would take a page per
/// user: 40 here, a billion promised.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_promises_more_than_it_serves_stops_at_its_limits() {
    for (limits, slow_pages_ms) in [("max_list_pages: 5", 0), ("list_deadline_seconds: 1", 300)] {
        let world = World::with_emulator(common::sqlite_db(), 40, &[]).await;
        world.emulator().set_quirks(
            TARGET,
            Quirks {
                max_page_size: 1,
                inflate_total_results: 1_000_000_000,
                slow_pages_ms,
                ..Quirks::default()
            },
        );
        world.write_config(
            "",
            &format!("{TARGET_OPTIONS}    user_match: {{ lookup: list }}\n    {limits}\n"),
        );
        let report = world.sync(opts()).await;
        assert_eq!(report.failed(), 0, "{limits}: {report:?}");
        world.assert_converged(&[]).await;
        let listings = world.emulator().counters(TARGET).user_listings;
        assert!(
            (1..=12).contains(&listings),
            "{limits}: {listings} pages of users read"
        );
    }
}
