//! The web console's pages, timed as a browser asks for them: `cargo bench --bench console
//! [-- --size 100000 --rules 2000 --pushed 20 --times 20]`.
//!
//! It generates the organisation and rule mix of the other benchmarks (the first `--pushed`
//! groups pushed to a `rosterd emulator` process), runs one `rosterd sync`, then starts the
//! release `rosterd run` with a `ui:` section and times each page over HTTP: the first answer,
//! then the median and the slowest of `--times` more. The session is written into the store
//! directly (signing in is the identity provider's time, not the page's); the browser tests
//! (tests/console.rs) sign in for real.

#![allow(
    clippy::expect_used,
    reason = "a benchmark program: a setup that fails should stop it loudly"
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rosterd::directory::generate;

const TOKEN: &str = "console-bench-token";
const SESSION: &str = "console-bench-session-cookie-value-0123456789";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// How many runs the daemon has recorded (of the 50 newest).
async fn runs_recorded(http: &reqwest::Client, base: &str) -> usize {
    let body = http
        .get(format!("{base}/api/v1/runs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("runs")
        .text()
        .await
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["runs"].as_array().map_or(0, Vec::len)
}

fn main() {
    let args = common::Args::new();
    let (size, rules) = args.size_and_rules((500, 20));
    let pushed: usize = args.value("--pushed", 20usize.min(rules));
    let times: usize = args.value("--times", if args.benchmarking() { 20 } else { 2 });
    let dir = std::env::temp_dir().join(format!("rosterd-console-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).expect("a temporary folder");
    println!(
        "rosterd console benchmark: {size} workers x {rules} groups ({pushed} pushed) on sqlite, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let workers = generate::generate(size, 42);
    common::write_csv(&workers, &dir.join("workers.csv"));
    let mut rules_text = String::new();
    let mut groups = 0;
    let mut first_group = String::new();
    for line in common::rule_mix(&workers, rules, 7).lines() {
        rules_text.push_str(line);
        rules_text.push('\n');
        if let Some(name) = line.strip_prefix("  - name: ") {
            if first_group.is_empty() {
                first_group = name.trim().to_string();
            }
            if groups < pushed {
                rules_text.push_str("    push: [bench]\n");
            }
            groups += 1;
        }
    }
    std::fs::write(dir.join("rules/bench.yaml"), rules_text).expect("the rules are written");

    let (emulator_port, port) = (free_port(), free_port());
    let config = dir.join("rosterd.yaml");
    let directory = common::sample_directory();
    std::fs::write(
        &config,
        format!(
            "database: sqlite://{}\n{directory}rules:\n  dir: rules\n\
targets:\n  bench:\n    url: http://127.0.0.1:{emulator_port}/bench\n    requests_per_second: 1000000\n    concurrency: 4\n    patch: {{ max_members_per_request: 100 }}\n    page_size: 100\n\
daemon:\n  sync: \"0 0 4 * * *\"\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n\
ui:\n  issuer: https://idp.example.com\n  client_id: bench\n  client_secret_env: ROSTERD_BENCH_OIDC_SECRET\n  redirect_url: http://127.0.0.1:{port}/auth/callback\n  viewers:\n    - claim: bench-viewers\n  approvers:\n    - claim: bench-approvers\n",
            dir.join("rosterd.db").display()
        ),
    )
    .expect("the config is written");

    let emulator = common::start_emulator(&config, emulator_port);
    let _emulator = Killed(emulator);
    let started = Instant::now();
    let sync = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("rosterd sync runs");
    // A held push exits 3; the pages are timed either way.
    assert!(
        matches!(sync.status.code(), Some(0 | 3)),
        "rosterd sync failed: {}\n{}",
        sync.status,
        String::from_utf8_lossy(&sync.stderr)
    );
    println!(
        "setup: rosterd sync (evaluate, push {pushed} groups) {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store =
            rosterd::store::Store::open(&format!("sqlite://{}", dir.join("rosterd.db").display()))
                .await
                .expect("the store opens");
        let now = chrono::Utc::now();
        let hash = rosterd::directory::checksum(SESSION.as_bytes());
        store
            .create_console_session(
                &hash,
                &rosterd::store::ConsoleSession {
                    subject: "bench".into(),
                    email: Some("bench@example.com".into()),
                    name: Some("Bench".into()),
                    claim_groups: vec!["bench-approvers".into()],
                    csrf_token: "csrf".into(),
                    expires_at: rosterd::clock::stamp(now + chrono::Duration::hours(1)),
                    id_token: None,
                    groups_elsewhere: false,
                },
                &rosterd::clock::stamp(now),
            )
            .await
            .expect("the session is stored");
        store.close().await;
    });

    let daemon = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("ROSTERD_API_TOKEN", TOKEN)
        .env("ROSTERD_BENCH_OIDC_SECRET", "unused")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rosterd run starts");
    let daemon_pid = daemon.id();
    let _daemon = Killed(daemon);
    let base = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        // Ready, and its takeover sync (the export unchanged) done.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let runs = http
                .get(format!("{base}/api/v1/runs"))
                .bearer_auth(TOKEN)
                .send()
                .await;
            if let Ok(r) = runs {
                let body = r.text().await.unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if v["runs"].as_array().is_some_and(|r| r.len() >= 2) && v["running"].is_null() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the daemon's first run did not finish");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let groups: serde_json::Value = serde_json::from_str(
            &http
                .get(format!("{base}/api/v1/groups"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("groups")
                .text()
                .await
                .expect("groups"),
        )
        .expect("JSON");
        let largest = groups["groups"]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|g| g["push"].as_array().is_some_and(|p| !p.is_empty()))
            .max_by_key(|g| g["members"].as_u64().unwrap_or(0))
            .expect("a pushed group");
        let (name, members) = (
            largest["name"].as_str().expect("a name").to_string(),
            largest["members"].as_u64().unwrap_or(0),
        );
        let worker = workers
            .iter()
            .find(|w| w.status == "Active")
            .expect("an active worker")
            .id
            .clone();
        let last_page = (members as usize).div_ceil(100).max(1);
        let pages = [
            ("overview", "/".to_string()),
            ("groups list", "/groups".to_string()),
            ("groups search", "/groups?q=eng".to_string()),
            (
                "group page (largest pushed group)",
                format!("/groups/{name}"),
            ),
            (
                "group page, last members page",
                format!("/groups/{name}?page={last_page}"),
            ),
            (
                "largest group's members on a date (from the audit)",
                format!("/groups/{name}/on?date={}", rosterd::clock::today_utc()),
            ),
            ("worker page", format!("/workers/{worker}")),
            (
                "worker page with explain",
                format!("/workers/{worker}?group={first_group}"),
            ),
            (
                "worker page, explain and history in the largest group",
                format!("/workers/{worker}?group={name}"),
            ),
            ("worker by email", format!("/workers?q={}", workers[0].email)),
            ("runs", "/runs".to_string()),
            ("first run (by group)", "/runs/1".to_string()),
            (
                "first run, one group's changes",
                format!("/runs/1?group={name}"),
            ),
            ("holds", "/holds".to_string()),
            (
                "plan a rule (checks 2,000 groups, evaluates)",
                "/plan?rule=division%20%3D%3D%20%22Engineering%22%20and%20is_manager".to_string(),
            ),
        ];
        println!(
            "largest pushed group: {name} ({members} members); {times} requests per page after the first"
        );
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>9}",
            "page", "first", "median", "slowest", "bytes"
        );
        for (what, path) in pages {
            let mut took = Vec::new();
            let mut bytes = 0;
            for _ in 0..=times {
                let started = Instant::now();
                let r = http
                    .get(format!("{base}{path}"))
                    .header("cookie", format!("rosterd-session={SESSION}"))
                    .send()
                    .await
                    .expect("the page answers");
                let status = r.status().as_u16();
                let body = r.bytes().await.expect("a body");
                took.push(started.elapsed().as_secs_f64() * 1e3);
                assert!(
                    status == 200 || status == 303,
                    "{path}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                bytes = body.len();
            }
            let first = took.remove(0);
            took.sort_by(f64::total_cmp);
            let median = took.get(took.len() / 2).copied().unwrap_or(first);
            let slowest = took.last().copied().unwrap_or(first);
            println!(
                "{what:<40} {first:>7.1}ms {median:>7.1}ms {slowest:>7.1}ms {bytes:>9}"
            );
        }

        // The probes while a sync evaluates the whole population: 1% of the workers move
        // division, so the export differs and every group is evaluated again.
        let mut moved = workers.clone();
        for w in moved.iter_mut().step_by(100) {
            w.division = if w.division == "Engineering" {
                "Sales".into()
            } else {
                "Engineering".into()
            };
        }
        common::write_csv(&moved, &dir.join("workers.csv"));
        let runs_before = runs_recorded(&http, &base).await;
        let queued = http
            .post(format!("{base}/api/v1/runs"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("a sync is queued");
        assert_eq!(queued.status().as_u16(), 202);
        let started = Instant::now();
        let mut probes = Vec::new();
        while runs_recorded(&http, &base).await == runs_before {
            let asked = Instant::now();
            let r = http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .expect("/healthz answers");
            assert_eq!(r.status().as_u16(), 200);
            probes.push(asked.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(
                started.elapsed() < Duration::from_secs(1_800),
                "the sync did not finish"
            );
        }
        probes.sort_by(f64::total_cmp);
        println!(
            "/healthz during a sync that evaluates after 1% of workers moved ({:.1} s): {} probes, median {:.1} ms, 99th {:.1} ms, slowest {:.1} ms",
            started.elapsed().as_secs_f64(),
            probes.len(),
            probes.get(probes.len() / 2).copied().unwrap_or(0.0),
            probes.get(probes.len() * 99 / 100).copied().unwrap_or(0.0),
            probes.last().copied().unwrap_or(0.0)
        );
    });
    // The daemon's peak resident memory, the snapshot in force kept evaluated included.
    let status = std::fs::read_to_string(format!("/proc/{daemon_pid}/status")).unwrap_or_default();
    if let Some(peak) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        println!("rosterd run peak memory: {}", peak.trim());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
