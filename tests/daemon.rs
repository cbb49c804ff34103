//! `rosterd run` as a real process against the emulator: HR and rule changes reach the
//! target on the schedule, a broken rule file leaves the last good rules in force, the API
//! wants its token (and never shows it), and SIGTERM stops the daemon cleanly.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{eventually, free_port, Daemon, TOKEN};
use common::world::{World, TARGET_OPTIONS};
use serde_json::Value;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// An active worker outside `division`: their key and email.
fn outside(world: &World, division: &str) -> (String, String) {
    world
        .workers
        .iter()
        .find(|w| w.division != division && w.status == "Active")
        .map(|w| (w.id.clone(), w.email.to_lowercase()))
        .unwrap()
}

/// Moves a worker to `division` in the export and waits until the target's `group` has them.
async fn move_and_see(world: &mut World, worker: (&str, &str), division: &str, group: &str) {
    let (key, email) = worker;
    move_to(world, key, division);
    see(world, key, email, group).await;
}

/// Moves a worker to `division` in the export.
fn move_to(world: &mut World, key: &str, division: &str) {
    world.edit_workers(|ws| {
        let w = ws.iter_mut().find(|w| w.id == key).unwrap();
        w.division = division.into();
    });
}

/// Waits until the target's `group` has the worker.
async fn see(world: &World, key: &str, email: &str, group: &str) {
    let what = format!("{key} reaching `{group}` in the target");
    eventually(30, &what, || async {
        world
            .actual()
            .await
            .get(group)
            .is_some_and(|m| m.contains(email))
    })
    .await;
}

/// Whether the target holds every stored group exactly.
async fn converged(world: &World) -> bool {
    let expected = world.expected(&[]).await;
    let actual = world.actual().await;
    let ok = !expected.is_empty() && expected.iter().all(|(g, m)| actual.get(g) == Some(m));
    if !ok && std::env::var("DEBUG_DAEMON").is_ok() {
        for (g, m) in &expected {
            let got = actual.get(g);
            eprintln!("{g}: expected {} got {:?}", m.len(), got.map(|x| x.len()));
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_hr_and_rule_changes_and_keeps_the_last_good_rules() {
    let mut world = World::with_emulator(common::sqlite_db(), 120, &[]).await;
    let port = free_port();
    world.write_config(
        &format!(
            "daemon:\n  sync: \"*/2 * * * * *\"\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n  rules_poll_seconds: 0.3\n  shutdown_timeout_seconds: 20\n"
        ),
        TARGET_OPTIONS,
    );
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;

    // The first scheduled sync pushes every group.
    eventually(60, "the first sync", || converged(&world)).await;
    world.assert_converged(&[]).await;

    // The API: open probes, everything else behind the token.
    assert_eq!(daemon.get("/healthz", None).await.0, 200);
    assert_eq!(daemon.get("/readyz", None).await.0, 200);
    for path in [
        "/metrics",
        "/api/v1/groups",
        "/api/v1/runs",
        "/api/v1/holds",
    ] {
        assert_eq!(daemon.get(path, None).await.0, 401, "{path}");
        assert_eq!(daemon.get(path, Some("wrong")).await.0, 401, "{path}");
        let (status, body) = daemon.get(path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains(TOKEN), "{path} shows the token");
    }
    let groups = json(&daemon.get("/api/v1/groups", Some(TOKEN)).await.1);
    assert_eq!(groups["groups"].as_array().unwrap().len(), 4);
    // One group: its YAML as written, and where.
    let sales = json(&daemon.get("/api/v1/groups/sales", Some(TOKEN)).await.1);
    assert_eq!(
        sales["definition"], "name: sales\nkind: managed\nrule: division == \"Sales\"\npush: [app]",
        "{sales}"
    );
    let location = sales["location"].as_str().unwrap();
    assert!(location.ends_with("groups.yaml:13:5"), "{location}");
    // Its push, as GET /api/v1/targets (and `rosterd status`) tell it: one model.
    let targets = json(&daemon.get("/api/v1/targets", Some(TOKEN)).await.1);
    let app = &targets["targets"]["app"];
    let in_app = app["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "sales")
        .unwrap();
    let push = &sales["push"][0];
    assert_eq!(push["target"], "app", "{sales}");
    assert_eq!(push["target_health"], app["health"], "{sales}");
    assert_eq!(push["verification"], in_app["verification"], "{sales}");
    assert_eq!(push["scim_id"], in_app["scim_id"], "{sales}");

    // A worker's groups, and why: by key or by email.
    let seller = world
        .workers
        .iter()
        .find(|w| w.division == "Sales" && w.status == "Active")
        .unwrap()
        .clone();
    for who in [seller.id.clone(), seller.email.clone()] {
        let (status, body) = daemon
            .get(&format!("/api/v1/workers/{who}/groups"), Some(TOKEN))
            .await;
        assert_eq!(status, 200);
        let body = json(&body);
        assert_eq!(body["worker"], seller.id.as_str(), "{body}");
        let groups: Vec<&str> = body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert!(groups.contains(&"sales"), "{body}");
        assert!(!groups.contains(&"engineering"), "{body}");
    }
    let (status, body) = daemon
        .get(
            &format!("/api/v1/explain?worker={}&group=sales", seller.id),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 200);
    let body = json(&body);
    let why = &body["explanations"][0];
    assert_eq!(why["group"], "sales", "{body}");
    assert_eq!(why["member"], true, "{body}");
    let (_, body) = daemon
        .get(
            &format!("/api/v1/explain?worker={}&group=engineering", seller.id),
            Some(TOKEN),
        )
        .await;
    assert_eq!(json(&body)["explanations"][0]["member"], false);
    for (path, status) in [
        ("/api/v1/explain?worker=nobody&group=sales", 404),
        ("/api/v1/explain?worker=nobody", 404),
        ("/api/v1/explain?group=sales", 400),
        ("/api/v1/groups/nosuch", 404),
        ("/api/v1/runs/abc", 400),
        ("/api/v1/runs/99999", 404),
        ("/api/v1/nosuch", 404),
    ] {
        let (got, body) = daemon.get(path, Some(TOKEN)).await;
        assert_eq!(got, status, "{path}");
        assert!(json(&body)["error"].is_string(), "{path}: {body}");
    }
    let explain = format!("/api/v1/explain?worker={}", seller.id);
    assert_eq!(daemon.get(&explain, None).await.0, 401);

    // Push one group now: a push job, not a sync.
    let (status, body) = daemon.post("/api/v1/groups/sales/push").await;
    assert_eq!(status, 202);
    assert_eq!(json(&body)["queued"], "push");
    // The target holds sales as the rules say already: the push had nothing to do, and
    // says so.
    eventually(30, "the group push running", || async {
        daemon
            .get("/metrics", Some(TOKEN))
            .await
            .1
            .contains("rosterd_runs_total{kind=\"push\",outcome=\"nothing_to_do\"} 1")
    })
    .await;

    // An HR change reaches the target.
    let (mover, email) = outside(&world, "Sales");
    move_and_see(&mut world, (&mover, &email), "Sales", "sales").await;

    // A new rule reaches the target.
    let rules = world.path("rules/groups.yaml");
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str("  - name: sales-and-engineering\n    kind: managed\n    rule: division in [\"Sales\", \"Engineering\"]\n    push: [app]\n");
    std::fs::write(&rules, &text).unwrap();
    eventually(30, "the new group reaching the target", || async {
        world.actual().await.contains_key("sales-and-engineering")
    })
    .await;

    // A broken rule file is refused; the last good rules stay in force and are reported.
    std::fs::write(
        world.path("rules/broken.yaml"),
        "groups:\n  - name: broken\n    kind: managed\n    rule: division ==\n    push: [app]\n",
    )
    .unwrap();
    eventually(30, "the broken rules being reported", || async {
        json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1)["refused"]["diagnostics"]
            .as_str()
            .is_some_and(|e| e.contains("broken.yaml"))
    })
    .await;
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    assert!(metrics.contains("rosterd_rules_load_ok 0"), "{metrics}");
    // The syncs go on with the last good rules: another HR change still arrives.
    move_and_see(&mut world, (&mover, &email), "Engineering", "engineering").await;
    assert!(world.actual().await.contains_key("sales-and-engineering"));
    assert!(!world.actual().await.contains_key("broken"));

    // SIGTERM: a clean exit, and the token never reached the log.
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("run finished"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains(TOKEN), "the log shows the token");
}

#[test]
fn the_daemon_refuses_to_start_without_its_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["run", "--config"])
        .arg(sample.join("rosterd.yaml"))
        .env_remove("ROSTERD_API_TOKEN")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ROSTERD_API_TOKEN"), "{stderr}");
}

/// A token no client could send (blank, with a space or a newline) or short enough to guess
/// is refused at start, with why and without quoting it.
#[test]
fn the_daemon_refuses_an_api_token_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (token, why) in [
        (" ", "is empty or blank"),
        (
            "a-long-enough-token with-a-space",
            "whitespace or control characters",
        ),
        (
            "a-long-enough-token\nsecond-line",
            "whitespace or control characters",
        ),
        ("short-token", "shorter than 16 bytes"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .args(["run", "--config"])
            .arg(sample.join("rosterd.yaml"))
            .env("ROSTERD_API_TOKEN", token)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{token:?}: {stderr}");
        assert!(
            stderr.contains("ROSTERD_API_TOKEN") && stderr.contains(why),
            "{token:?}: {stderr}"
        );
        let quoted = !token.trim().is_empty() && stderr.contains(token.trim());
        assert!(!quoted, "the token is quoted: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_push_loses_nothing() {
    let world = World::with_emulator(common::sqlite_db(), 150, &[]).await;
    let port = free_port();
    world.write_config(
        &format!(
            "daemon:\n  sync: \"*/1 * * * * *\"\n  listen: 127.0.0.1:{port}\n  shutdown_timeout_seconds: 0.2\n"
        ),
        TARGET_OPTIONS,
    );
    // Slow requests, so that the push is still going when the signal comes.
    world.emulator().set_faults(
        common::world::TARGET,
        rosterd::scim::emulator::Faults {
            latency_ms: 150,
            ..Default::default()
        },
    );
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    eventually(60, "the push starting", || async {
        world
            .emulator()
            .counters(common::world::TARGET)
            .applied_writes
            > 2
    })
    .await;
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("stay in the outbox"),
        "the push was cut short: {log}"
    );
    // The run says so, wherever it is read.
    let store = world.store().await;
    let runs = store.runs_told(5).await.unwrap();
    store.close().await;
    let cut = runs
        .iter()
        .find(|r| r.outcome == rosterd::store::RunOutcome::CutShort)
        .unwrap_or_else(|| panic!("no run recorded as cut short: {runs:?}"));
    assert!(
        cut.outcome_reason
            .as_deref()
            .is_some_and(|r| r.contains("stopped before the push finished")),
        "{cut:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(world.path("rosterd.yaml"))
        .args(["runs", "--limit", "5"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    assert!(listed.contains("cut_short"), "{listed}");
    // The next start sends what was left; the target ends up exactly as the rules say.
    world
        .emulator()
        .set_faults(common::world::TARGET, Default::default());
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    eventually(60, "the target converging after the restart", || {
        converged(&world)
    })
    .await;
    assert!(daemon.terminate().success());
}

/// Two daemons on one PostgreSQL database: exactly one leads and syncs, the other serves the
/// API on standby; when the leader is killed the standby takes over within seconds and HR
/// changes keep reaching the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_dies() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let mut world = World::with_emulator(db, 80, &[]).await;
    let ports = [free_port(), free_port()];
    world.write_config(
        &format!(
            "daemon:\n  sync: \"*/1 * * * * *\"\n  listen: 127.0.0.1:{}\n  leader_poll_seconds: 0.5\n",
            ports[0]
        ),
        TARGET_OPTIONS,
    );
    write_pair_configs(&world, ports);
    let a = Daemon::start_named(&world, "a", ports[0]);
    a.ready().await;
    let b = Daemon::start_named(&world, "b", ports[1]);
    b.ready().await;
    eventually(60, "the first sync", || converged(&world)).await;

    // Exactly one leads; only it runs jobs, and the standby refuses to queue one.
    let (leading_a, leading_b) = (a.leading().await, b.leading().await);
    assert!(
        leading_a != leading_b,
        "a leads: {leading_a}, b leads: {leading_b}"
    );
    let (mut leader, standby) = if leading_a { (a, b) } else { (b, a) };
    assert!(leader.log().contains("run finished"), "{}", leader.log());
    assert!(!standby.log().contains("run finished"), "{}", standby.log());
    assert_eq!(standby.post("/api/v1/runs").await.0, 503);
    let metrics = standby.get("/metrics", Some(TOKEN)).await.1;
    assert!(metrics.contains("rosterd_leader 0"), "{metrics}");

    // The leader dies; the standby takes over within seconds.
    leader.kill();
    let died = Instant::now();
    eventually(10, "the standby taking over", || standby.leading()).await;
    let took = died.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    eprintln!("failover took {took:?}");

    // And the syncs go on from the new leader.
    let (mover, email) = outside(&world, "Sales");
    move_and_see(&mut world, (&mover, &email), "Sales", "sales").await;
    eventually(30, "convergence under the new leader", || converged(&world)).await;
    let mut standby = standby;
    assert!(standby.terminate().success(), "{}", standby.log());
    assert!(standby
        .log()
        .contains("leading: this process now runs the scheduled work"));
}

/// A leader that hangs (SIGSTOP) keeps its lock session open, so the lock alone would keep
/// the standby waiting for as long as it hangs. Its lease runs out instead: the standby ends
/// the hung leader's lock session and leads within four polls, and syncs an HR change; the
/// old process, woken (SIGCONT), sends nothing more to the target and steps down. It hangs
/// in the middle of a run's write, which holds its epoch's row (and so the standby's new
/// epoch) until it ends: the server ends it after a lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_leader_is_replaced_and_sends_nothing_when_it_wakes() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let url = db.url.clone();
    let mut world = World::with_emulator(db, 80, &[]).await;
    let ports = [free_port(), free_port()];
    let poll = 0.5;
    let lease_polls = 3;
    world.write_config(
        &format!(
            "daemon:\n  sync: \"*/1 * * * * *\"\n  listen: 127.0.0.1:{}\n  leader_poll_seconds: {poll}\n  leader_lease_polls: {lease_polls}\n",
            ports[0]
        ),
        TARGET_OPTIONS,
    );
    write_pair_configs(&world, ports);
    let a = Daemon::start_named(&world, "a", ports[0]);
    a.ready().await;
    eventually(10, "a leading", || a.leading()).await;
    let b = Daemon::start_named(&world, "b", ports[1]);
    b.ready().await;
    eventually(60, "the first sync", || converged(&world)).await;
    assert!(!b.leading().await);
    let (mut leader, mut standby) = (a, b);
    let pid = leader.child.as_ref().unwrap().id();
    let agent = format!("(pid {pid})");

    // The leader hangs for three lease periods.
    let signal = |name: &str| {
        let ok = Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {name} {pid}");
    };
    // It hangs in the middle of storing a run, holding its epoch's row: the run's commit
    // waits on a lock the test holds; the test stops the process, then lets go.
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let mut held = admin.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(rosterd::store::RUN_COMMIT_LOCK)
        .execute(&mut *held)
        .await
        .unwrap();
    let (mover, email) = outside(&world, "Sales");
    move_to(&mut world, &mover, "Sales");
    eventually(10, "the leader's run waiting to commit", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'",
        )
        .fetch_one(&admin)
        .await
        .unwrap()
            > 0
    })
    .await;
    signal("-STOP");
    let stopped = Instant::now();
    held.rollback().await.unwrap();
    eventually(10, "the standby taking over", || standby.leading()).await;
    let took = stopped.elapsed();
    eprintln!("a hung leader was replaced in {took:?} (poll {poll} s, lease {lease_polls} polls)");
    // Four polls, and the test's own polling of /readyz.
    assert!(
        took < Duration::from_secs_f64(poll * 4.0 + 0.5),
        "took {took:?}"
    );
    see(&world, &mover, &email, "sales").await;
    let hang = Duration::from_secs_f64(poll * f64::from(lease_polls) * 3.0);
    tokio::time::sleep(hang.saturating_sub(stopped.elapsed())).await;

    // It wakes: nothing more from it reaches the target, while the new leader goes on.
    let before = world
        .emulator()
        .write_agents(common::world::TARGET)
        .iter()
        .filter(|a| a.contains(&agent))
        .count();
    signal("-CONT");
    let (mover, email) = outside(&world, "Engineering");
    move_and_see(&mut world, (&mover, &email), "Engineering", "engineering").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = world
        .emulator()
        .write_agents(common::world::TARGET)
        .iter()
        .filter(|a| a.contains(&agent))
        .count();
    assert_eq!(after, before, "the woken leader wrote to the target");
    assert!(!leader.leading().await, "the woken process stood down");
    assert!(standby.leading().await);
    let log = leader.log();
    assert!(log.contains("stepping down"), "{log}");
    assert!(
        !log.contains("slow statement"),
        "the lock's own wait is not slow: {log}"
    );
    let log = standby.log();
    assert!(
        log.contains("has not renewed its lease"),
        "the standby says why it took over: {log}"
    );

    // A database that stalls (a table locked by another session): /readyz says so within
    // two seconds, not after the pool's fifteen.
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = standby.get("/readyz", None).await;
    let took = started.elapsed();
    tx.rollback().await.unwrap();
    admin.close().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("did not answer within"), "{body}");
    assert!(took < Duration::from_secs(2), "/readyz took {took:?}");
    assert_eq!(standby.get("/readyz", None).await.0, 200);
    assert!(leader.terminate().success(), "{}", leader.log());
    assert!(standby.terminate().success(), "{}", standby.log());
}

/// A rule file nested past any stack, requests that name no worker a database can hold, and a
/// thousand connections that never finish their headers: the daemon keeps serving, keeps the
/// last good rules, and says what it refused. It starts with the soft limit of open files
/// that containers often have (1,024), which it raises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rules_and_connections_do_not_stop_the_daemon() {
    let world = World::with_emulator(common::sqlite_db(), 40, &[]).await;
    let port = free_port();
    world.write_config(
        &format!(
            "daemon:\n  sync: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n  rules_poll_seconds: 0.3\n  api_header_timeout_seconds: 1\n"
        ),
        TARGET_OPTIONS,
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -Sn 1024 && exec \"$0\" run --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_rosterd"))
        .arg(world.path("rosterd.yaml"));
    let mut daemon = Daemon::spawn(&world, "rosterd", port, command);
    daemon.ready().await;

    // 100,000 nested parentheses: refused with a diagnostic, the last good rules stay.
    let deep = "(".repeat(100_000) + "remote" + &")".repeat(100_000);
    std::fs::write(
        world.path("rules/deep.yaml"),
        format!("groups:\n  - name: deep\n    kind: managed\n    rule: '{deep}'\n"),
    )
    .unwrap();
    eventually(30, "the nested rules being refused", || async {
        json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1)["refused"]["diagnostics"]
            .as_str()
            .is_some_and(|e| e.contains("deep.yaml:4:") && e.contains("nested too deeply"))
    })
    .await;
    assert_eq!(daemon.get("/healthz", None).await.0, 200);
    let groups = json(&daemon.get("/api/v1/groups", Some(TOKEN)).await.1);
    assert_eq!(groups["groups"].as_array().unwrap().len(), 4, "{groups}");
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    assert!(metrics.contains("rosterd_rules_load_ok 0"), "{metrics}");

    // Worker names that cannot be keys are bad requests, not failed queries.
    for path in [
        "/api/v1/workers/%00/groups",
        "/api/v1/workers/a%0Ab/groups",
        "/api/v1/explain?worker=%00",
    ] {
        let (status, body) = daemon.get(path, Some(TOKEN)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(json(&body)["error"].is_string(), "{path}: {body}");
    }

    // A thousand connections that never finish their headers, from 20 addresses (each
    // within the 64 connections one address may hold).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut idle = Vec::new();
    for i in 0..1_000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("127.0.1.{}:0", 1 + i % 20).parse().unwrap())
            .unwrap();
        let mut s = socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    let (status, _) = daemon.get("/readyz", None).await;
    assert_eq!(status, 200, "{}", daemon.log());
    // The header timeout closes them (a 408 or a bare close, then end of stream).
    let mut closed = 0;
    for s in &mut idle {
        let mut rest = Vec::new();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        idle.len(),
        "connections left open past the header timeout"
    );
    drop(idle);
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", daemon.log());
    assert!(
        !daemon.log().contains("Too many open files"),
        "{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refuses_to_start_on_rules_it_cannot_load() {
    let world = World::with_emulator(common::sqlite_db(), 10, &[]).await;
    let deep = "not ".repeat(5_000) + "remote";
    std::fs::write(
        world.path("rules/deep.yaml"),
        format!("groups:\n  - name: deep\n    kind: managed\n    rule: '{deep}'\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["run", "--config"])
        .arg(world.path("rosterd.yaml"))
        .env("ROSTERD_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the daemon started on rules it could not load");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}: {stderr}");
    assert!(stderr.contains("deep.yaml:4:"), "{stderr}");
    assert!(stderr.contains("expression nested too deeply"), "{stderr}");
}

/// `a.yaml` and `b.yaml`: the world's config (written for `ports[0]`) for two daemons, each
/// with its own API port.
fn write_pair_configs(world: &World, ports: [u16; 2]) {
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
    for (name, port) in [("a", ports[0]), ("b", ports[1])] {
        let own = config.replace(
            &format!("127.0.0.1:{}", ports[0]),
            &format!("127.0.0.1:{port}"),
        );
        std::fs::write(world.path(&format!("{name}.yaml")), own).unwrap();
    }
}

/// How many runs of `kind` the daemon's metrics count, whatever their outcome.
async fn runs_of(daemon: &Daemon, kind: &str) -> u64 {
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    let prefix = format!("rosterd_runs_total{{kind=\"{kind}\",");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The daemon's config with `daemon:` settings `extra` (indented by two spaces).
fn daemon_config(world: &World, port: u16, extra: &str) {
    world.write_config(
        &format!(
            "daemon:\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n  shutdown_timeout_seconds: 20\n{extra}"
        ),
        TARGET_OPTIONS,
    );
}

/// A SIGHUP that changes `daemon.sync` takes effect at the new schedule's next time, not
/// after the old schedule fires: from once a day to every two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_changed_by_sighup_takes_effect_at_its_next_time() {
    let world = World::with_emulator(common::sqlite_db(), 60, &[]).await;
    let port = free_port();
    daemon_config(&world, port, "  sync: \"0 0 4 * * *\"\n");
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    // The leader syncs once when it takes over; then the schedule says tomorrow.
    eventually(60, "the first sync", || async {
        runs_of(&daemon, "sync").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        runs_of(&daemon, "sync").await,
        1,
        "nothing else is due today"
    );

    daemon_config(&world, port, "  sync: \"*/2 * * * * *\"\n");
    daemon.hang_up();
    eventually(15, "two syncs on the new schedule", || async {
        runs_of(&daemon, "sync").await >= 3
    })
    .await;
    assert!(daemon.terminate().success(), "{}", daemon.log());
}

/// A rules change that loads is followed by a sync within
/// `daemon.sync_after_rules_change_seconds`, though the schedule says tomorrow; the API
/// shows the revision in force, when it loaded, and a refused one with its diagnostics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_change_is_followed_by_a_sync_and_the_api_shows_the_revision() {
    let world = World::with_emulator(common::sqlite_db(), 60, &[]).await;
    let port = free_port();
    daemon_config(
        &world,
        port,
        "  sync: \"0 0 4 * * *\"\n  rules_poll_seconds: 0.2\n  sync_after_rules_change_seconds: 1\n",
    );
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    eventually(60, "the first sync", || async {
        runs_of(&daemon, "sync").await == 1
    })
    .await;
    let before = json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1);
    let digest = before["in_force"]["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64, "{before}");
    assert!(before["in_force"]["loaded_at"].is_string(), "{before}");
    assert_eq!(before["in_force"]["groups"], 4, "{before}");
    assert!(before["refused"].is_null(), "{before}");

    let rules = world.path("rules/groups.yaml");
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str("  - name: sales-and-engineering\n    kind: managed\n    rule: division in [\"Sales\", \"Engineering\"]\n    push: [app]\n");
    std::fs::write(&rules, &text).unwrap();
    eventually(20, "the new group reaching the target", || async {
        world.actual().await.contains_key("sales-and-engineering")
    })
    .await;
    assert_eq!(runs_of(&daemon, "sync").await, 2, "one sync for the change");
    let after = json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1);
    assert_ne!(after["in_force"]["digest"], digest.as_str(), "{after}");
    assert_eq!(after["in_force"]["groups"], 5, "{after}");
    assert!(after["sync_due_at"].is_null(), "{after}");

    // A broken file: refused with its diagnostics, the revision in force unchanged, and no
    // sync for it.
    std::fs::write(
        world.path("rules/broken.yaml"),
        "groups:\n  - name: broken\n    kind: managed\n    rule: division ==\n    push: [app]\n",
    )
    .unwrap();
    eventually(20, "the broken rules being reported", || async {
        json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1)["refused"]["diagnostics"]
            .as_str()
            .is_some_and(|e| e.contains("broken.yaml"))
    })
    .await;
    let refused = json(&daemon.get("/api/v1/rules", Some(TOKEN)).await.1);
    assert_eq!(refused["in_force"]["digest"], after["in_force"]["digest"]);
    assert!(refused["refused"]["at"].is_string(), "{refused}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        runs_of(&daemon, "sync").await,
        2,
        "no sync for refused rules"
    );
    assert!(daemon.terminate().success(), "{}", daemon.log());
}

/// Fencing: two daemons on PostgreSQL, a slow push to a target that stores a member twice
/// when it is added twice, and the leader's lock session terminated in the middle of the
/// push (as a dropped connection or `pg_terminate_backend` does) while its process lives on.
/// The old leader stops before its next request and its writes to the store are refused;
/// whoever leads next completes the push from what the target holds. The target saw one
/// writer at a time, and ends exactly right with one entry per member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lock_stops_and_nothing_is_sent_twice() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let url = db.url.clone();
    let world = World::with_emulator(db, 200, &[]).await;
    let emulator = world.emulator();
    emulator.set_quirks(
        common::world::TARGET,
        rosterd::scim::emulator::Quirks {
            duplicate_on_add: true,
            ..Default::default()
        },
    );
    emulator.set_faults(
        common::world::TARGET,
        rosterd::scim::emulator::Faults {
            latency_ms: 60,
            ..Default::default()
        },
    );
    let ports = [free_port(), free_port()];
    world.write_config(
        &format!(
            "daemon:\n  sync: \"0 0 4 * * *\"\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{}\n  leader_poll_seconds: 0.2\n  shutdown_timeout_seconds: 5\n",
            ports[0]
        ),
        &TARGET_OPTIONS.replace(
            "patch: { max_members_per_request: 10 }",
            "patch: { max_members_per_request: 4 }\n    concurrency: 2",
        ),
    );
    write_pair_configs(&world, ports);
    let mut a = Daemon::start_named(&world, "a", ports[0]);
    a.ready().await;
    eventually(10, "a leading", || a.leading()).await;
    let mut b = Daemon::start_named(&world, "b", ports[1]);
    b.ready().await;
    eventually(60, "the push under way", || async {
        emulator.counters(common::world::TARGET).applied_writes > 12
    })
    .await;

    // The API shows how far the push is.
    let runs = json(&a.get("/api/v1/runs", Some(TOKEN)).await.1);
    let progress = &runs["progress"][0];
    assert_eq!(progress["target"], "app", "{runs}");
    assert!(progress["sent"].as_u64().unwrap() > 0, "{runs}");
    assert!(progress["to_send"].as_u64().unwrap() > 0, "{runs}");
    let metrics = a.get("/metrics", Some(TOKEN)).await.1;
    assert!(
        metrics.contains("rosterd_push_requests_remaining{target=\"app\"}"),
        "{metrics}"
    );

    // The leader's lock session ends; its process goes on.
    let admin = sqlx::AnyPool::connect(&url).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a \
         JOIN pg_locks l ON l.pid = a.pid \
         WHERE a.application_name = 'rosterd-leadership' AND a.datname = current_database() \
         AND l.locktype = 'advisory' AND l.granted",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    assert_eq!(ended, [true], "one lock session ended");
    let writes_then = emulator.counters(common::world::TARGET).applied_writes;

    eventually(90, "the push completed by the next leader", || {
        converged(&world)
    })
    .await;
    world.assert_converged(&[]).await;
    world.assert_one_entry_each().await;

    // One writer at a time: each process's writes form one stretch.
    let agents = emulator.write_agents(common::world::TARGET);
    let mut stretches: Vec<&String> = Vec::new();
    for agent in &agents {
        if stretches.last() != Some(&agent) {
            stretches.push(agent);
        }
    }
    let distinct: std::collections::BTreeSet<&&String> = stretches.iter().collect();
    assert_eq!(
        distinct.len(),
        stretches.len(),
        "writers interleaved: {stretches:?}"
    );
    let total = emulator.counters(common::world::TARGET).applied_writes;
    eprintln!(
        "{writes_then} writes before the lock session ended, {total} in all; writers in turn: {stretches:?}"
    );
    let log_a = a.log();
    assert!(log_a.contains("stepping down"), "{log_a}");
    assert!(log_a.contains("no longer leads"), "{log_a}");
    assert!(a.terminate().success(), "{}", a.log());
    assert!(b.terminate().success(), "{}", b.log());
}

/// A run that changed more memberships than the API lists at once (any first run at scale)
/// is counted per group and says how to ask for the rest; one group's changes then come
/// 1,000 a page, every change once, in order, until an empty page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_runs_changes_are_counted_per_group_and_paged() {
    let world = World::with_emulator(common::sqlite_db(), 10_500, &[]).await;
    let port = free_port();
    world.write_config(
        &format!(
            "daemon:\n  sync: \"0 0 4 * * *\"\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n"
        ),
        "    requests_per_second: 5000\n    patch: { max_members_per_request: 1000 }\n",
    );
    let daemon = Daemon::start(&world, port);
    daemon.ready().await;
    // The leader syncs when it takes over: run 1 joins every member.
    eventually(120, "run 1", || async {
        daemon.get("/api/v1/runs/1", Some(TOKEN)).await.0 == 200
    })
    .await;
    let run = json(&daemon.get("/api/v1/runs/1", Some(TOKEN)).await.1);
    let total = run["total_changes"].as_u64().unwrap();
    assert!(total > 10_000, "the scenario needs a large run: {total}");
    let groups = run["groups"].as_array().unwrap();
    let counted: u64 = groups
        .iter()
        .map(|g| g["joined"].as_u64().unwrap() + g["left"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, total, "{groups:?}");
    assert_eq!(
        run["changes"],
        serde_json::json!([]),
        "nothing listed whole"
    );
    let omitted = run["changes_omitted"].as_str().unwrap();
    assert!(omitted.contains("?group=NAME&page=N"), "{omitted}");

    let everyone = groups.iter().find(|g| g["group"] == "everyone").unwrap();
    let joined = everyone["joined"].as_u64().unwrap() as usize;
    assert!(joined > 1_000, "more than a page: {joined}");
    let mut seen = Vec::new();
    for page in 1.. {
        let body = daemon
            .get(
                &format!("/api/v1/runs/1?group=everyone&page={page}"),
                Some(TOKEN),
            )
            .await
            .1;
        let one = json(&body);
        assert!(one.get("changes_omitted").is_none(), "{page}");
        let changes = one["changes"].as_array().unwrap();
        if changes.is_empty() {
            break;
        }
        assert!(changes.len() <= 1_000);
        for c in changes {
            assert_eq!(c["group"], "everyone");
            assert_eq!(c["added"], true);
            seen.push(c["worker"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.len(), joined);
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), joined, "a change listed twice");
    let active: std::collections::BTreeSet<&String> = world
        .workers
        .iter()
        .filter(|w| w.status == "Active")
        .map(|w| &w.id)
        .collect();
    assert_eq!(distinct, active);
}

/// Target `app`'s health as `rosterd status --format json`, `GET /api/v1/targets` and the
/// metrics tell it, which must be one state.
async fn one_health(world: &World, daemon: &Daemon) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["status", "--format", "json", "--config"])
        .arg(world.path("rosterd.yaml"))
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = cli["app"]["health"]["state"].as_str().unwrap().to_string();
    let healthy = state == "healthy";
    assert_eq!(
        out.status.code(),
        Some(if healthy { 0 } else { 5 }),
        "{cli}"
    );
    let (_, api) = daemon.get("/api/v1/targets", Some(TOKEN)).await;
    let api: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(
        api["targets"]["app"]["health"], cli["app"]["health"],
        "{api}"
    );
    assert_eq!(api["targets"]["app"]["pending"], cli["app"]["pending"]);
    assert_eq!(api["targets"]["app"]["failed"], cli["app"]["failed"]);
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    for line in [
        format!("rosterd_target_health{{target=\"app\",state=\"{state}\"}} 1"),
        format!(
            "rosterd_target_healthy{{target=\"app\"}} {}",
            u8::from(healthy)
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    state
}

/// The deploy guide's push alerts, driven through a real daemon: a sync with nothing to send
/// still reads the target back (its slice of groups), so the last-success timestamp moves on
/// and nothing counts as failed; with the target answering 503 to everything, the failure
/// counters rise, the run is `failed` naming the target, and the timestamp stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_guides_alerts_fire_when_a_target_stops_and_stay_quiet_otherwise() {
    use rosterd::scim::emulator::{FaultKind, Faults};
    let world = World::with_emulator(common::sqlite_db(), 60, &[]).await;
    let port = free_port();
    daemon_config(&world, port, "  sync: \"0 0 4 * * *\"\n");
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    eventually(60, "the first sync", || async {
        runs_of(&daemon, "sync").await == 1
    })
    .await;
    let value = |metrics: &str, series: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let last_success = "rosterd_last_successful_push_timestamp_seconds{target=\"app\"}";
    let failed_pushes = "rosterd_pushes_total{target=\"app\",outcome=\"failed\"}";
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    let first = value(&metrics, last_success).unwrap_or_else(|| panic!("{metrics}"));

    // Nothing to send: quiet alerts, and the timestamp moves on.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(daemon.post("/api/v1/runs").await.0, 202);
    eventually(30, "a sync with nothing to send", || async {
        runs_of(&daemon, "sync").await == 2
    })
    .await;
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    let second = value(&metrics, last_success).unwrap();
    assert!(
        second > first,
        "the quiet sync counts as a success:\n{metrics}"
    );
    assert_eq!(value(&metrics, failed_pushes), None, "{metrics}");
    assert!(
        metrics.contains("rosterd_runs_total{kind=\"sync\",outcome=\"nothing_to_do\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("outcome=\"failed\""), "{metrics}");
    let before = one_health(&world, &daemon).await;

    // The target stops answering: the alerts' series rise, the timestamp stays.
    world.emulator().set_faults(
        common::world::TARGET,
        Faults {
            rate: 1.0,
            kinds: vec![FaultKind::Status(503)],
            ..Faults::default()
        },
    );
    assert_eq!(daemon.post("/api/v1/runs").await.0, 202);
    eventually(60, "a sync against the stopped target", || async {
        runs_of(&daemon, "sync").await == 3
    })
    .await;
    let metrics = daemon.get("/metrics", Some(TOKEN)).await.1;
    assert!(
        value(&metrics, failed_pushes).unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("rosterd_runs_total{kind=\"sync\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert_eq!(value(&metrics, last_success), Some(second), "{metrics}");
    let after = one_health(&world, &daemon).await;
    assert_eq!(after, "unreachable");
    assert_ne!(before, after);
    let (_, runs) = daemon.get("/api/v1/runs", Some(TOKEN)).await;
    let runs = json(&runs);
    assert_eq!(runs["runs"][0]["outcome"], "failed", "{runs}");
    let log = daemon.log();
    assert!(
        log.contains("failed_targets=\"app\"") || log.contains("failed_targets=app"),
        "{log}"
    );
    assert!(log.contains("HTTP 503"), "the log names the answer: {log}");
    assert!(daemon.terminate().success(), "{}", daemon.log());
}

/// One client holding 2,000 idle connections (and reopening what the daemon closes) takes
/// at most its own share: another client's `/readyz` and token-authenticated
/// `GET /api/v1/runs`, each on a new connection, answer within a second throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_with_thousands_of_idle_connections_cannot_starve_the_others() {
    rlimit::increase_nofile_limit(16_384).unwrap();
    let world = World::with_emulator(common::sqlite_db(), 20, &[]).await;
    let port = free_port();
    daemon_config(
        &world,
        port,
        "  sync: \"0 0 4 * * *\"\n  api_header_timeout_seconds: 60\n  api_max_connections: 768\n",
    );
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&held);
    let flood = tokio::spawn(async move {
        let mut open: Vec<tokio::net::TcpStream> = Vec::new();
        loop {
            while open.len() < 2_000 {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => open.push(s),
                    Err(_) => break,
                }
            }
            // Those the daemon closed read as the end of the stream: open them again.
            open.retain(|s| {
                let mut byte = [0u8; 1];
                match s.try_read(&mut byte) {
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                    Ok(n) => n > 0,
                }
            });
            counted.store(open.len(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut slowest = Duration::ZERO;
    for _ in 0..15 {
        for (path, token) in [("/readyz", None), ("/api/v1/runs", Some(TOKEN))] {
            let mut request = other.get(format!("{}{path}", daemon.api));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let started = Instant::now();
            let status = request.send().await.map(|r| r.status().as_u16());
            let took = started.elapsed();
            slowest = slowest.max(took);
            assert_eq!(status.ok(), Some(200), "{path} from another client");
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    flood.abort();
    eprintln!(
        "the flooding client held {} connections open; the slowest answer to another client took {slowest:?}",
        held.load(std::sync::atomic::Ordering::Relaxed)
    );
    let log = daemon.log();
    assert!(
        log.contains("one client holds too many open connections"),
        "{log}"
    );
    assert!(daemon.terminate().success(), "{}", daemon.log());
}

/// A push held by a guardrail is told to the webhooks once, though every sync after holds it
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_push_is_told_to_the_webhooks_once() {
    let world = World::with_emulator(common::sqlite_db(), 60, &[]).await;
    std::fs::write(
        world.path("rules/guardrails.yaml"),
        "guardrails:\n  - name: sales-size\n    group: sales\n    max_members: 1\n  - name: engineering-size\n    group: engineering\n    max_members: 1\n    on_violation: warn\n",
    )
    .unwrap();
    // A manual group whose entry was never reviewed: due today, told once a day.
    std::fs::write(
        world.path("rules/door.yaml"),
        format!(
            "groups:\n  - name: door-access\n    kind: manual\n    owners: [facilities@example.com]\n    members:\n      - id: {}\n        reason: Opens the office\n",
            world.workers[0].id
        ),
    )
    .unwrap();
    let (url, got) = common::hooks::receiver().await;
    let port = free_port();
    daemon_config(
        &world,
        port,
        &format!("  sync: \"*/2 * * * * *\"\nnotifications:\n  retry_backoff_ms: 10\n  webhooks:\n    - {{ name: ops, url: '{url}/ops', events: [hold, guardrail, reviews_due] }}\n  reviews_due_daily: true\n"),
    );
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    eventually(60, "three syncs", || async {
        runs_of(&daemon, "sync").await >= 3
    })
    .await;
    assert!(daemon.terminate().success(), "{}", daemon.log());
    let got = got.lock().unwrap().clone();
    // The guardrail that only warns is told once too, on the first run that broke it.
    let (due, got): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.0 == "reviews_due");
    let due: Vec<_> = due.iter().filter(|r| r.4 == 200).collect();
    assert_eq!(due.len(), 1, "told once a day over three runs: {due:#?}");
    let body: serde_json::Value = serde_json::from_str(&due[0].3).unwrap();
    assert_eq!(body["data"]["due"][0]["group"], "door-access", "{body}");
    assert_eq!(
        body["data"]["due"][0]["why"]["kind"], "never_reviewed",
        "{body}"
    );
    let (warned, got): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.0 == "guardrail");
    let warned: Vec<_> = warned.iter().filter(|r| r.4 == 200).collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    let body: serde_json::Value = serde_json::from_str(&warned[0].3).unwrap();
    assert_eq!(body["data"]["guardrail"], "engineering-size", "{body}");
    assert_eq!(body["data"]["hold"], false, "{body}");
    let taken: Vec<_> = got.iter().filter(|r| r.4 == 200).collect();
    assert_eq!(taken.len(), 1, "{got:#?}\n{}", daemon.log());
    // Refused once by the receiver, then taken: the same delivery, tried twice.
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].1, got[1].1);
    assert_eq!(taken[0].0, "hold");
    let body: serde_json::Value = serde_json::from_str(&taken[0].3).unwrap();
    assert_eq!(body["data"]["group"], "sales", "{body}");
    assert_eq!(body["data"]["status"], "held", "{body}");
    assert!(
        body["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("sales-size"),
        "{body}"
    );
}
