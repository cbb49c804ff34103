//! Push scenarios that any SCIM peer must pass: the emulator (tests/push.rs) and the
//! third-party scim2-server (tests/interop.rs) run the same ones. Request counts come from
//! rosterd's client, so they hold for either peer.

use rosterd::push::Options;

use super::world::{World, TARGET};

fn opts() -> Options {
    Options::default()
}

/// The first sync creates every group with the fewest writes the batch size allows; the
/// second, with nothing changed, sends nothing at all.
pub async fn nothing_changed_sends_no_write(world: &World) {
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    // Each group: one POST with its first 10 members, then a PATCH per 10 more.
    let expected = world.expected(&[]).await;
    let minimum: u64 = expected
        .values()
        .map(|m| (m.len().max(1) as u64).div_ceil(10))
        .sum();
    assert_eq!(
        report.targets[0].writes, minimum,
        "writes of the initial sync"
    );
    let again = world.sync(opts()).await;
    let t = &again.targets[0];
    assert_eq!(
        (t.reads, t.writes),
        (0, 0),
        "users are cached and groups known"
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
    // engineering: 1 remove PATCH; sales: one PATCH with its 2 adds and 1 remove;
    // everyone: 1 remove.
    assert_eq!(report.targets[0].writes, 3);
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
        .approve_push_hold(hold_id, "2026-11-22T00:00:00Z")
        .await
        .unwrap();
    store.close().await;
    let released = world.sync(opts()).await;
    assert_eq!(released.held(), 0);
    world.assert_converged(&[]).await;
    let store = world.store().await;
    let holds = store.push_holds(None).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].status, "released");
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
    let report = world
        .sync(Options {
            reconcile: true,
            ..opts()
        })
        .await;
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
