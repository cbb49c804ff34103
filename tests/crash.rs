//! Killing `rosterd evaluate` at any moment leaves the database in the previous state or the
//! new one, never half of the new one: a run's writes are one transaction. On both backends.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::TestDb;
use rosterd::store::Store;

type State = BTreeMap<String, BTreeSet<String>>;

on_both_backends!(a_killed_run_leaves_the_previous_state_or_the_new_one);

/// A folder with the sample rules, a generated export and a config on `db`.
fn install(db: &TestDb) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rules = Path::new("rules").canonicalize().unwrap();
    let config = std::fs::read_to_string("rosterd.yaml")
        .unwrap()
        .replace("dir: rules", &format!("dir: {}", rules.display()))
        .replace("file: sample/workers.csv", "file: workers.csv")
        .replace(
            "database: sqlite://rosterd.db",
            &format!("database: {}", db.url),
        );
    assert!(
        config.contains(&db.url),
        "the sample config names its database"
    );
    std::fs::write(dir.path().join("rosterd.yaml"), config).unwrap();
    write_export(dir.path(), 0);
    dir
}

/// 25,000 workers; `variant` moves a different fifth of them to another country, so that
/// each variant changes thousands of memberships.
fn write_export(dir: &Path, variant: usize) {
    let mut workers = rosterd::directory::generate::generate(25_000, 11);
    for (i, w) in workers.iter_mut().enumerate() {
        if variant > 0 && i % 5 == variant % 5 {
            w.country = if w.country == "US" {
                "DE".into()
            } else {
                "US".into()
            };
        }
    }
    let file = std::fs::File::create(dir.join("workers.csv")).unwrap();
    rosterd::directory::generate::write_csv(&workers, std::io::BufWriter::new(file)).unwrap();
}

fn evaluate(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("rosterd"));
    cmd.current_dir(dir)
        .args(["--as-of", "2026-11-22", "evaluate"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

async fn state(store: &Store) -> State {
    store
        .memberships()
        .await
        .unwrap()
        .into_iter()
        .map(|(g, members)| (g, members.into_keys().collect()))
        .collect()
}

/// The memberships the audit implies, replayed run by run: equal to the memberships table
/// unless a run was half written.
async fn replayed(store: &Store) -> State {
    let mut out = State::new();
    let mut runs = store.runs(1000).await.unwrap();
    runs.reverse();
    for run in runs {
        for c in store.run_changes(run.id).await.unwrap() {
            let members = out.entry(c.group.clone()).or_default();
            if c.added {
                members.insert(c.worker);
            } else {
                members.remove(&c.worker);
            }
        }
    }
    out.retain(|_, m| !m.is_empty());
    out
}

async fn a_killed_run_leaves_the_previous_state_or_the_new_one(db: TestDb) {
    let dir = install(&db);
    let timer = Instant::now();
    evaluate_to_the_end(dir.path());
    // How long a run takes here; the kills aim at fractions of it, late ones at the commit.
    let mut estimate = timer.elapsed();
    let store = Store::open(&db.url).await.unwrap();
    let mut previous = state(&store).await;
    store.close().await;

    let mut killed_mid_run = 0;
    for variant in 1..=4 {
        write_export(dir.path(), variant);
        let mut child = evaluate(dir.path()).spawn().unwrap();
        // Kill at a different point of each run, from evaluating to committing.
        let fraction = [0.6, 0.8, 0.9, 0.97][variant - 1];
        let kill_at = estimate.mul_f64(fraction);
        std::thread::sleep(kill_at);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        if !finished {
            killed_mid_run += 1;
        }
        let store = Store::open(&db.url).await.unwrap();
        let now = state(&store).await;
        assert_eq!(
            replayed(&store).await,
            now,
            "the audit and the memberships disagree: a half-written run"
        );
        let runs = store.runs(1000).await.unwrap();
        assert!(
            runs.iter()
                .all(|r| r.status == rosterd::store::RunStatus::Succeeded),
            "no half-recorded run"
        );
        if now != previous {
            // The run committed before the kill: the state is the complete new one.
            assert_eq!(
                runs[0].memberships as usize,
                now.values().map(BTreeSet::len).sum::<usize>()
            );
        }
        // Finish the run, as the daemon's next cycle would.
        store.close().await;
        let timer = Instant::now();
        evaluate_to_the_end(dir.path());
        estimate = timer.elapsed();
        let store = Store::open(&db.url).await.unwrap();
        let after = state(&store).await;
        assert_eq!(replayed(&store).await, after);
        assert_ne!(after, previous, "variant {variant} changes memberships");
        previous = after;
        store.close().await;
        eprintln!("{}: variant {variant}: killed at {kill_at:?} of ~{estimate:?}, had finished: {finished}", db.url);
    }
    assert!(
        killed_mid_run >= 2,
        "only {killed_mid_run} kills landed while the run was in progress"
    );
}

/// Runs `evaluate` to the end; a failure shows what rosterd said.
#[track_caller]
fn evaluate_to_the_end(dir: &Path) {
    let out = evaluate(dir)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rosterd evaluate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
