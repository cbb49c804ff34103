//! Killing rosterd at any point of a push, then starting it again, ends with every target
//! group exactly right: changes are in the outbox before they are sent, and the store learns
//! them only when the target confirms. Real processes, SIGKILL, on both backends.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::world::{Kind, Peer, World, TARGET, TARGET_OPTIONS};
use common::TestDb;
use rosterd::scim::emulator::{FaultKind, Faults};

on_both_backends!(a_push_killed_at_any_point_ends_exactly_right);

fn rosterd(world: &World, command: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args([
            "--config",
            world.path("rosterd.yaml").to_str().unwrap(),
            command,
        ])
        .args(["--as-of", "2026-11-22"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn a_push_killed_at_any_point_ends_exactly_right(db: TestDb) {
    killed_at_any_point(World::with_emulator(db, 300, &[]).await).await;
}

/// The same against a target of `kind: okta`, where every member change is a request of its
/// own.
#[tokio::test]
async fn an_okta_push_killed_at_any_point_ends_exactly_right() {
    killed_at_any_point(World::with_okta(common::sqlite_db(), 300, &[]).await).await;
}

/// The same against a target of `kind: google_workspace`, where member changes go in batch
/// requests whose calls apply one by one (a kill can land with half a batch applied).
#[tokio::test]
async fn a_google_push_killed_at_any_point_ends_exactly_right() {
    killed_at_any_point(World::with_google(common::sqlite_db(), 300, &[]).await).await;
}

/// The same against a private slapd (`kind: ldap`), where a modify of two member values
/// applies whole or not at all, and the kills are counted in the server's own monitor.
#[tokio::test]
async fn an_ldap_push_killed_at_any_point_ends_exactly_right() {
    if let Some(world) = World::with_slapd(common::sqlite_db(), 300, &[]).await {
        killed_at_any_point(world).await;
    }
}

/// The writes the target has served so far: the emulator's count, or the directory's.
async fn writes(world: &World, admin: &mut Option<ldap3::Ldap>) -> u64 {
    match &world.peer {
        Peer::Ldap(s) => s.writes(admin.as_mut().unwrap()).await,
        _ => world.emulator().counters(TARGET).writes,
    }
}

async fn killed_at_any_point(mut world: World) {
    // Two member changes per request and a little latency: a push is hundreds of requests
    // long, and the kills land in the middle of it. The failsafe would hold the swings.
    world.write_config(
        "",
        &(TARGET_OPTIONS.replace("max_members_per_request: 10", "max_members_per_request: 2")
            + "    failsafe: { max_remove_percent: 100 }\n"),
    );
    // A Google target's batches carry two member changes too.
    let path = world.path("rosterd.yaml");
    let config = std::fs::read_to_string(&path).unwrap();
    // A directory's modifies carry two values, and are paced to last long enough.
    let config = config.replace("batch_size: 10", "batch_size: 2");
    let config = match world.kind {
        Kind::Ldap => config.replace("requests_per_second: 5000", "requests_per_second: 300"),
        _ => config,
    };
    std::fs::write(&path, config).unwrap();
    let mut admin = match &world.peer {
        Peer::Ldap(s) => Some(s.admin().await),
        _ => None,
    };
    let mut killed = 0;
    for (round, kill_at) in [1u64, 2, 3, 8, 21, 44].into_iter().enumerate() {
        // Every round has work: a batch of workers swings between Engineering and Sales.
        let (from, to) = if round % 2 == 0 {
            ("Engineering", "Sales")
        } else {
            ("Sales", "Engineering")
        };
        world.edit_workers(|workers| {
            for w in workers.iter_mut().filter(|w| w.division == from).take(60) {
                w.division = to.into();
            }
        });
        // Every third round, some answers are lost after the change was applied.
        let faults = if round % 3 == 2 {
            Faults {
                rate: 0.2,
                kinds: vec![FaultKind::DropAfterApply],
                latency_ms: 3,
                ..Faults::default()
            }
        } else {
            Faults {
                latency_ms: 3,
                ..Faults::default()
            }
        };
        // A directory cannot be made to lose answers: its rounds are kills only.
        if world.kind != Kind::Ldap {
            world.emulator().set_faults(TARGET, faults);
        }
        let before = writes(&world, &mut admin).await;
        let mut child = rosterd(&world, "sync");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                eprintln!("round {round}: sync finished ({status}) before {kill_at} writes");
                break;
            }
            if writes(&world, &mut admin).await - before >= kill_at {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the sync hangs");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        // Start again: the outbox is replayed and the push finishes.
        if world.kind != Kind::Ldap {
            world.emulator().set_faults(TARGET, Faults::default());
        }
        let out = tokio::task::spawn_blocking({
            let child = rosterd(&world, "sync");
            move || child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        world.assert_converged(&[]).await;
        let store = world.store().await;
        assert!(
            store.pending_outbox(TARGET).await.unwrap().is_empty(),
            "round {round}: outbox drained"
        );
        store.close().await;
    }
    assert!(
        killed >= 5,
        "only {killed} of 6 rounds were killed mid-push"
    );
}
