//! Push scenarios that any SCIM peer must pass: the emulator (tests/push.rs) and the
//! third-party scim2-server (tests/interop.rs) run the same ones. Request counts come from
//! rosterd's client, so they hold for either peer.

use rosterd::push::Options;
use rosterd::store::{DriftKind, HoldStatus, PairAction};

use super::world::{Kind, World, TARGET, TARGET_OPTIONS};

/// A `sync --reconcile`'s push options.
pub fn reconcile() -> Options {
    Options {
        reconcile: true,
        ..opts()
    }
}

/// A plain sync's push options.
pub fn opts() -> Options {
    Options::default()
}

/// The first sync creates every group with the fewest writes the batch size allows; the
/// second, with nothing changed, sends nothing at all.
pub async fn nothing_changed_sends_no_write(world: &World) {
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    // SCIM: each group one POST with its first 10 members, then a PATCH per 10 more.
    // Okta: each group one POST, then one PUT per member.
    let expected = world.expected(&[]).await;
    let minimum: u64 = match world.kind {
        Kind::Scim => expected
            .values()
            .map(|m| (m.len().max(1) as u64).div_ceil(10))
            .sum(),
        Kind::Okta => expected.values().map(|m| 1 + m.len() as u64).sum(),
        // Google: each group one POST, then a batch per 10 members.
        // LDAP: each group one add with its first 10 members, then a modify per 10 more.
        Kind::Ldap => expected
            .values()
            .map(|m| (m.len().max(1) as u64).div_ceil(10))
            .sum(),
        Kind::Google => expected
            .values()
            .map(|m| 1 + (m.len() as u64).div_ceil(10))
            .sum(),
    };
    assert_eq!(
        report.targets[0].writes, minimum,
        "writes of the initial sync"
    );
    let again = world.sync(opts()).await;
    let t = &again.targets[0];
    // Users are cached and groups known: the only reads verify the run's slice of groups
    // (at least one; here, with 4 groups over the default schedule, exactly one): the group
    // read back (its pages too), and a sample of its user ids confirmed with one filter.
    // Every read is verification's, and counted as such.
    assert_eq!(t.writes, 0, "{t:?}");
    let reads = world.first_group_read_requests() + 1;
    assert_eq!(
        (t.verified, t.verify_reads, t.reads),
        (1, reads, reads),
        "{t:?}"
    );
    assert!(t.groups.iter().all(|g| g.added == 0 && g.removed == 0));
}

/// A few HR changes become a few small PATCHes.
pub async fn changes_are_pushed_as_deltas(world: &mut World) {
    world.sync(opts()).await;
    // Two engineers move to Sales, one salesperson leaves.
    world.edit_workers(|workers| {
        let leaver = workers
            .iter()
            .position(|w| {
                w.division == "Sales"
                    && w.status == "Active"
                    && w.management_level.contains("Individual")
            })
            .unwrap();
        workers[leaver].status = "Terminated".into();
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering" && w.status == "Active")
            .take(2)
        {
            w.division = "Sales".into();
        }
    });
    let report = world.sync(opts()).await;
    world.assert_converged(&[]).await;
    let changes: Vec<(String, usize, usize)> = report.targets[0]
        .groups
        .iter()
        .filter(|g| g.added + g.removed > 0)
        .map(|g| (g.group.clone(), g.added, g.removed))
        .collect();
    assert_eq!(
        changes,
        [
            ("engineering".to_string(), 0, 2),
            ("sales".to_string(), 2, 1),
            ("everyone".to_string(), 0, 1)
        ],
    );
    // SCIM: engineering 1 remove PATCH; sales one PATCH with its 2 adds and 1 remove;
    // everyone 1 remove. Okta: a request per member changed.
    assert_eq!(report.targets[0].writes, world.writes_for(&[2, 3, 1]));
}

/// Removing more than the failsafe allows is held, stays held, and goes through once
/// approved.
pub async fn a_mass_removal_is_held_until_approved(world: &mut World) {
    world.sync(opts()).await;
    let before = world.actual().await;
    // Half of Engineering moves out: more than the 20% the target allows.
    world.edit_workers(|workers| {
        let engineers: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].division == "Engineering")
            .collect();
        for &i in &engineers[..engineers.len() / 2] {
            workers[i].division = "Operations".into();
        }
    });
    let report = world.sync(opts()).await;
    let held: Vec<_> = report.targets[0]
        .groups
        .iter()
        .filter_map(|g| g.held.as_ref().map(|h| (g.group.as_str(), h)))
        .collect();
    assert_eq!(held.len(), 1, "{report:?}");
    assert_eq!(held[0].0, "engineering");
    assert!(
        held[0]
            .1
            .reason
            .contains("more than max_remove_percent (20%)"),
        "{}",
        held[0].1.reason
    );
    let after = world.actual().await;
    assert_eq!(
        after["engineering"], before["engineering"],
        "a held push sends nothing"
    );
    // Held again at the next sync, under the same hold.
    let again = world.sync(opts()).await;
    let hold_id = held[0].1.hold_id;
    let engineering = again.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "engineering")
        .unwrap();
    assert_eq!(engineering.held.as_ref().unwrap().hold_id, hold_id);
    let store = world.store().await;
    store
        .approve_push_hold(hold_id, "2026-11-22T00:00:00Z", "cli:corpsec")
        .await
        .unwrap();
    store.close().await;
    let released = world.sync(opts()).await;
    assert_eq!(released.held(), 0);
    world.assert_converged(&[]).await;
    let store = world.store().await;
    let holds = store.push_holds(None).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].status, HoldStatus::Released);
    store.close().await;
}

/// Members added and removed by hand in the target are put right by a reconcile, and the
/// drift is recorded; a plain sync trusts what it knows and sends nothing.
pub async fn a_reconcile_repairs_drift(world: &World) {
    world.sync(opts()).await;
    let expected = world.expected(&[]).await;
    let outsider = world
        .workers
        .iter()
        .map(|w| w.email.to_lowercase())
        .find(|e| !expected["sales"].contains(e))
        .unwrap();
    let insider = expected["sales"].iter().next().unwrap().clone();
    world.edit_by_hand("sales", &[&outsider], &[&insider]).await;
    let plain = world.sync(opts()).await;
    assert_eq!(plain.targets[0].writes, 0);
    let report = world.sync(reconcile()).await;
    let sales = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "sales")
        .unwrap();
    assert_eq!((sales.drift, sales.added, sales.removed), (2, 1, 1));
    world.assert_converged(&[]).await;
    let store = world.store().await;
    let drift = store.drift(TARGET, "sales").await.unwrap();
    let kinds: Vec<&str> = drift.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["extra", "missing"]);
    store.close().await;
}

/// Scenario 2: the target deleted every user and created each again under a new id (a
/// restore, a re-import), its groups still holding the old ids. One `sync --reconcile`
/// heals it with no approval needed, says what it found, and leaves nothing to do.
pub async fn one_reconcile_heals_recreated_users(world: &World) {
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    world.recreate_all_users().await;
    let (_, stale) = world.entries().await;
    assert!(stale > 100, "the groups hold {stale} stale ids");
    let report = world.sync(reconcile()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.held(), 0, "no approval needed: {report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    // It says what it found: the stale ids, as entries that are no user's.
    let store = world.store().await;
    let drift = store.drift(TARGET, "everyone").await.unwrap();
    store.close().await;
    assert!(
        drift.iter().any(|d| d.kind == DriftKind::NotAUser),
        "{drift:?}"
    );
    assert!(report.targets[0]
        .groups
        .iter()
        .all(|g| g.drift > 0 || g.members == 0));
    // And the next sync has nothing to do.
    let next = world.sync(opts()).await;
    assert_eq!(next.targets[0].writes, 0, "{next:?}");
}

/// Scenario 3: members held twice and ids that are no user's, added by hand. A reconcile
/// reports each by kind and repairs the group to one entry per rightful member.
pub async fn a_reconcile_removes_duplicates_and_unknown_ids(world: &World) {
    world.sync(opts()).await;
    let (groups, _) = world.entries().await;
    let held: Vec<String> = groups["everyone"].iter().take(3).cloned().collect();
    let mut by_hand: Vec<&str> = held.iter().map(String::as_str).collect();
    by_hand.extend(["no-such-user-1", "no-such-user-2"]);
    world.add_entries_by_hand("everyone", &by_hand).await;
    let report = world.sync(reconcile()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let store = world.store().await;
    let drift = store.drift(TARGET, "everyone").await.unwrap();
    store.close().await;
    let kinds = |kind: &str| drift.iter().filter(|d| d.kind.as_str() == kind).count();
    assert_eq!(kinds("duplicate"), 3, "{drift:?}");
    assert_eq!(kinds("not_a_user"), 2, "{drift:?}");
    // Each entry is drift of one kind: the ids that are no user's are not also `extra`.
    assert_eq!(kinds("extra"), 0, "{drift:?}");
}

/// Scenario 5 on any peer: HR emails that differ from the userNames in case only, looked up
/// with the default `lookup: auto` by filter (few workers to look up), find every account.
pub async fn case_variant_user_names_are_found(world: &mut World) {
    // Three engineers join a pushed group only after the first sync has cached everyone
    // else, with their HR emails upper-cased.
    let managers: std::collections::BTreeSet<String> = world
        .workers
        .iter()
        .filter_map(|w| w.manager_id.clone())
        .collect();
    let joiners: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Engineering" && w.status == "Active")
        .filter(|w| !managers.contains(&w.id))
        .take(3)
        .map(|w| w.id.clone())
        .collect();
    assert_eq!(joiners.len(), 3);
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| joiners.contains(&w.id)) {
            w.status = "Terminated".into();
            w.division = "Legal".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.edit_workers(|workers| {
        for w in workers.iter_mut().filter(|w| joiners.contains(&w.id)) {
            w.status = "Active".into();
            w.division = "Engineering".into();
            w.email = w.email.to_uppercase();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let unprovisioned: usize = report.targets[0]
        .groups
        .iter()
        .map(|g| g.unprovisioned)
        .sum();
    assert_eq!(unprovisioned, 0, "every account is found: {report:?}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
}

/// Verification (1): the target re-created every user under a new id and kept the old ids
/// in its groups; then a worker joins a group. One plain sync confirms the joiner's cached
/// id before adding it, finds it unknown, and verifies the whole target in the same run: no
/// entry that is no user is left, and the joiner is in.
pub async fn recreated_users_then_a_change_heal_in_one_plain_sync(world: &mut World) {
    world.sync(opts()).await;
    world.recreate_all_users().await;
    let (_, stale) = world.entries().await;
    assert!(stale > 100, "the groups hold {stale} stale ids");
    let joiner = world
        .workers
        .iter()
        .find(|w| w.division == "Engineering" && w.status == "Active")
        .unwrap()
        .id
        .clone();
    world.edit_workers(|workers| {
        let w = workers.iter_mut().find(|w| w.id == joiner).unwrap();
        w.division = "Sales".into();
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.held(), 0, "{report:?}");
    let reset = report.targets[0].reset.as_deref().unwrap_or_default();
    assert!(reset.contains("cached user ids are no users"), "{reset}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    let email = world
        .workers
        .iter()
        .find(|w| w.id == joiner)
        .unwrap()
        .email
        .to_lowercase();
    assert!(world.actual().await["sales"].contains(&email));
}

/// Verification (2): the target restarted on empty storage and its users were imported
/// again under new ids. One plain sync notices (its slice reads a group that is gone),
/// verifies the whole target, and makes every group again with exactly its members.
pub async fn a_target_restarted_empty_is_rebuilt_in_one_plain_sync(world: &World) {
    world.sync(opts()).await;
    world.assert_converged(&[]).await;
    world.restart_empty().await;
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let reset = report.targets[0].reset.as_deref().unwrap_or_default();
    assert!(reset.contains("is gone"), "{reset}");
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;
    assert!(report.targets[0]
        .groups
        .iter()
        .all(|g| g.action == Some(PairAction::Created)));
}

/// Verification (4): a group renamed by hand in the target is named back by the next
/// verification of it, which records the name it was found under as drift.
pub async fn a_group_renamed_by_hand_is_named_back(world: &World) {
    world.sync(opts()).await;
    world.rename_by_hand("sales", "Sales (old)").await;
    // Each plain sync verifies the groups read longest ago; sales comes up within 4.
    let mut renamed = None;
    for _ in 0..4 {
        let report = world.sync(opts()).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        let sales = report.targets[0]
            .groups
            .iter()
            .find(|g| g.group == "sales")
            .unwrap()
            .clone();
        if sales.verified {
            renamed = Some(sales);
            break;
        }
    }
    let Some(sales) = renamed else {
        panic!("sales was not verified within 4 syncs")
    };
    assert!(sales.renamed && sales.drift == 1, "{sales:?}");
    world.assert_converged(&[]).await;
    let store = world.store().await;
    let drift = store.drift(TARGET, "sales").await.unwrap();
    store.close().await;
    let found = drift.iter().find(|d| d.kind == DriftKind::Renamed).unwrap();
    assert_eq!(found.detail.as_deref(), Some("Sales (old)"));
}

/// A guardrail the memberships break holds the group it concerns until approved, then the
/// held changes go out.
pub async fn a_broken_guardrail_holds_the_group_until_approved(world: &mut World) {
    world.sync(opts()).await;
    let sales = world.expected(&[]).await["sales"].len();
    std::fs::write(
        world.path("rules/guardrails.yaml"),
        format!("guardrails:\n  - name: sales-size\n    group: sales\n    max_members: {sales}\n"),
    )
    .unwrap();
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering" && w.status == "Active")
            .take(2)
        {
            w.division = "Sales".into();
        }
    });
    let before = world.actual().await;
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 1, "{report:?}");
    assert_eq!(
        world.actual().await["sales"],
        before["sales"],
        "sales is held"
    );
    world.approve_held().await;
    let report = world.sync(opts()).await;
    assert_eq!(report.held(), 0, "{report:?}");
    world.assert_converged(&[]).await;
}

/// A link takes over a group made by hand (its members stay, one entry each) and is never
/// deleted, even with `on_unpush: delete`; a group rosterd made is.
pub async fn a_link_takes_over_a_group_and_only_made_groups_are_deleted(world: &World) {
    world.write_config("", &format!("{TARGET_OPTIONS}    on_unpush: delete\n"));
    let sales: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Sales" && w.status == "Active")
        .map(|w| w.email.to_lowercase())
        .collect();
    let some: Vec<&str> = sales.iter().take(2).map(String::as_str).collect();
    world.create_group_by_hand("Sales Team (HR)", &some).await;
    // A Google group is linked by its address; the others by name.
    let link = if world.kind == Kind::Google {
        assert!(world.emulator().set_group_email(
            TARGET,
            "Sales Team (HR)",
            "sales-team@example.com"
        ));
        "sales-team@example.com"
    } else {
        "Sales Team (HR)"
    };
    let push = format!("push: [{{ target: app, display_name: sales, link: {link} }}]");
    let rules = super::world::RULES.replace(
        "    rule: division == \"Sales\"\n    push: [app]",
        &format!("    rule: division == \"Sales\"\n    {push}"),
    );
    std::fs::write(world.path("rules/groups.yaml"), &rules).unwrap();
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let groups = world.actual().await;
    // What the rules put in sales (workers on leave included), by the push's display name.
    let want = world.expected(&[]).await["sales"].clone();
    assert_eq!(groups["Sales Team (HR)"], want);
    assert!(!groups.contains_key("sales"));
    // Both leave the rules: the linked one is unlinked, the one rosterd made deleted.
    let rules = rules.replace(&push, "push: []").replace(
        "    rule: division == \"Engineering\"\n    push: [app]",
        "    rule: division == \"Engineering\"\n    push: []",
    );
    std::fs::write(world.path("rules/groups.yaml"), rules).unwrap();
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    // Deleting a group removes all its members: the failsafe holds it for approval.
    assert_eq!(report.held(), 1, "{report:?}");
    assert!(world.actual().await.contains_key("engineering"));
    world.approve_held().await;
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let groups = world.actual().await;
    assert!(groups.contains_key("Sales Team (HR)"), "{groups:?}");
    assert!(!groups.contains_key("engineering"), "{groups:?}");
}
