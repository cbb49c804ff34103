//! The commands users type, timed whole: `cargo bench --bench commands [-- --size 100000
//! --rules 2000 --backend sqlite|postgres --keep --push]` (`--keep` leaves the folder and database
//! for a closer look; `--push` times `rosterd sync` into a `rosterd emulator` process instead:
//! the first sync, one with the export unchanged, one after 1% of workers change).
//!
//! It generates the organisation and rule mix of the other benchmarks into a temporary folder,
//! then runs the release `rosterd` binary as a user would and prints each command's wall time
//! and peak memory (maximum resident set size, from `/usr/bin/time -v`), and the database's
//! size after each run that writes:
//!
//! - `plan` (text) and `plan --format json` on an empty store;
//! - the first `evaluate`;
//! - `evaluate` with the export unchanged;
//! - `evaluate` after 1% of workers change;
//! - `plan` with nothing changed.
//!
//! With `--backend postgres` the store is a fresh database on the server that
//! `ROSTERD_TEST_POSTGRES_URL` names (as scripts/test starts it). With `RUST_LOG=rosterd=debug`
//! the daemon's runs (made in this process) log each phase with its milliseconds.

#![allow(
    clippy::expect_used,
    reason = "a benchmark program: a setup that fails should stop it loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rosterd::directory::generate;

fn main() {
    let args = common::Args::new();
    let (size, rules) = args.size_and_rules((500, 20));
    let backend: String = args.value("--backend", "sqlite".to_string());
    let dir = std::env::temp_dir().join(format!("rosterd-commands-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).expect("a temporary folder");
    let database = match backend.as_str() {
        "sqlite" => format!("sqlite://{}", dir.join("rosterd.db").display()),
        "postgres" => postgres_database(),
        other => panic!("--backend: sqlite or postgres, not {other}"),
    };
    println!(
        "rosterd commands benchmark: {size} workers x {rules} groups on {backend}, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut workers = generate::generate(size, 42);
    common::write_csv(&workers, &dir.join("workers.csv"));
    let push = args.flag("--push");
    let mut rules_text = String::new();
    for line in common::rule_mix(&workers, rules, 7).lines() {
        rules_text.push_str(line);
        rules_text.push('\n');
        if push && line.starts_with("  - name:") {
            rules_text.push_str("    push: [bench]\n");
        }
    }
    std::fs::write(dir.join("rules/bench.yaml"), rules_text).expect("the rules are written");
    let config = write_config(&dir, &database);
    let db_size = || -> Option<u64> {
        match backend.as_str() {
            "sqlite" => Some(
                ["rosterd.db", "rosterd.db-wal"]
                    .iter()
                    .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                    .map(|m| m.len())
                    .sum::<u64>(),
            ),
            _ => {
                let (_, name) = database.rsplit_once('/')?;
                query_admin(&format!("SELECT pg_database_size('{name}')"))
            }
        }
    };

    let rosterd = |args: &[&str], what: &str| {
        let measured = run(&config, args);
        let size = if args.contains(&"evaluate") {
            db_size().map_or(String::new(), |b| {
                format!("  database {:>8.1} MB", b as f64 / 1e6)
            })
        } else {
            String::new()
        };
        println!(
            "{what:<48} {:>9.2} s  peak {:>7.0} MiB{size}",
            measured.seconds,
            measured.peak_kib as f64 / 1024.0
        );
    };
    if push {
        // `rosterd sync` into a `rosterd emulator` of its own process (an account per
        // worker), so that the peak is rosterd's alone. The emulator reads the same config
        // (for the export), so the target goes in first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let text = std::fs::read_to_string(&config).expect("the config");
        std::fs::write(
            &config,
            format!(
                "{text}targets:\n  bench:\n    url: http://127.0.0.1:{port}/bench\n    requests_per_second: 1000000\n    concurrency: 4\n    patch: {{ max_members_per_request: 100 }}\n    page_size: 100\n    failsafe: {{ max_remove_percent: 100 }}\n"
            ),
        )
        .expect("the config is written");
        let mut emulator = common::start_emulator(&config, port);
        rosterd(&["sync"], "sync, first (creates and fills every group)");
        rosterd(&["sync"], "sync, identical export");
        common::change_one_percent(&mut workers);
        common::write_csv(&workers, &dir.join("workers.csv"));
        rosterd(&["sync"], "sync after 1% of workers change");
        let _ = emulator.kill();
        let _ = emulator.wait();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date");
    let baseline = |what: &str| {
        let (seconds, peak) = baseline(&config, as_of);
        println!(
            "{:<48} {seconds:>9.2} s  peak {peak:>7.0} MiB",
            format!("baseline: {what}")
        );
        seconds
    };
    let first_baseline = baseline("load + evaluate the export");
    rosterd(&["plan"], "plan (text), empty store");
    rosterd(
        &["--format", "json", "plan"],
        "plan --format json, empty store",
    );
    rosterd(&["evaluate"], "evaluate, first run");
    rosterd(&["evaluate"], "evaluate, identical export");
    common::change_one_percent(&mut workers);
    common::write_csv(&workers, &dir.join("workers.csv"));
    let changed_baseline = baseline("load + evaluate the changed export");
    rosterd(&["evaluate"], "evaluate after 1% of workers change");
    rosterd(&["plan"], "plan, nothing changed");
    println!(
        "(the first evaluate and plan compare with {first_baseline:.2} s; the evaluate after the change with {changed_baseline:.2} s)"
    );
    daemon_runs(&config, &dir, &mut workers);
    if args.flag("--keep") {
        println!("kept: {}", dir.display());
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if backend == "postgres" {
        drop_postgres_database(&database);
    }
}

/// The baseline every command is measured against: the export loaded (typed, columnar) and
/// every group evaluated, in this process, nothing stored. Wall time and peak memory (the
/// process's high-water mark, reset first; the rules' included).
fn baseline(config: &Path, as_of: chrono::NaiveDate) -> (f64, f64) {
    let config = rosterd::config::Config::load(config).expect("the config");
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let rules = rosterd::rules::load(
        &config.rules.dir,
        &rosterd::rules::Context::from_config(&config, &schema),
    )
    .expect("the rules");
    common::reset_peak();
    let started = std::time::Instant::now();
    let (snapshot, _) = rosterd::directory::load(&config.directory).expect("the export");
    let evaluation = rosterd::engine::evaluate(&snapshot, &rules, as_of);
    let seconds = started.elapsed().as_secs_f64();
    let peak = common::status_mib("VmHWM:");
    drop((evaluation, snapshot));
    (seconds, peak)
}

/// The daemon's runs, in this process as `rosterd run` makes them (`cycle::run_warm`, on
/// the benchmark's database): a run after 1% of workers change with nothing kept (the first
/// run after a start), then one after another 1% change from what that run kept. Then the
/// memory the kept state holds between runs.
fn daemon_runs(config: &Path, dir: &Path, workers: &mut [rosterd::directory::generate::Worker]) {
    // `RUST_LOG=rosterd=debug` shows each phase of these runs with its milliseconds.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let config = std::sync::Arc::new(rosterd::config::Config::load(config).expect("the config"));
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let rules = std::sync::Arc::new(
        rosterd::rules::load(
            &config.rules.dir,
            &rosterd::rules::Context::from_config(&config, &schema),
        )
        .expect("the rules"),
    );
    runtime.block_on(async {
        let store = rosterd::store::Store::open(config.database_url().expect("a database"))
            .await
            .expect("the store");
        let before = common::status_mib("VmRSS:");
        let mut warm = rosterd::cycle::Warm::new(config.daemon.full_evaluation_every);
        for (seed, what) in [
            (10, "daemon run after 1% change, nothing kept"),
            (11, "daemon run after 1% change, from the last run"),
        ] {
            common::change_one_percent_seeded(workers, seed);
            common::write_csv(workers, &dir.join("workers.csv"));
            let inputs = rosterd::cycle::Inputs {
                config: std::sync::Arc::clone(&config),
                rules: std::sync::Arc::clone(&rules),
                as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
                now: rosterd::clock::now_utc(),
                kind: "sync",
            };
            let started = std::time::Instant::now();
            rosterd::cycle::run_warm(&inputs, &store, &mut warm)
                .await
                .expect("the run");
            let run = started.elapsed().as_secs_f64();
            // What a daemon's run then reads for the push: the desired state.
            let started = std::time::Instant::now();
            rosterd::push::Desired::from_kept_or_store(&warm, &store, &config)
                .await
                .expect("the desired state");
            let desired = started.elapsed().as_secs_f64();
            println!("{what:<48} {run:>9.2} s  (+ {desired:.2} s reading the desired state for the push)");
        }
        println!(
            "daemon: resident memory between runs            {:>9.0} MiB ({:.0} MiB before its first run; the benchmark's own data included)",
            common::status_mib("VmRSS:"),
            before
        );
        assert_eq!(warm.incremental_runs(), 1, "the second run evaluated from the first");
        assert!(
            warm.reused_rows() > 0,
            "the second run's load took the unchanged rows from the first's"
        );
        store.close().await;
    });
}

struct Measured {
    seconds: f64,
    peak_kib: u64,
}

/// Runs `rosterd --config CONFIG ARGS` under `/usr/bin/time -v`, output to /dev/null.
fn run(config: &Path, args: &[&str]) -> Measured {
    let started = std::time::Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(config)
        .args(["--as-of", "2026-11-22"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("/usr/bin/time runs (Debian package `time`)");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rosterd {args:?} failed: {}",
        stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    let peak_kib = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("/usr/bin/time -v reports the maximum resident set size");
    Measured { seconds, peak_kib }
}

fn write_config(dir: &Path, database: &str) -> PathBuf {
    let directory = common::sample_directory()
        // A generated 1% change is not a failsafe matter.
        .replace("max_shrink_percent: 10", "max_shrink_percent: 100");
    let config = format!("database: {database}\n{directory}rules:\n  dir: rules\n");
    let path = dir.join("rosterd.yaml");
    std::fs::write(&path, config).expect("the config is written");
    path
}

/// Drops the benchmark's database (gigabytes at 100k x 2,000).
fn drop_postgres_database(url: &str) {
    let (_, name) = url.rsplit_once('/').expect("a database URL");
    run_on_admin(&format!("DROP DATABASE {name}"));
}

/// Runs one statement on the server's admin database, `ROSTERD_TEST_POSTGRES_URL`.
fn run_on_admin(sql: &str) {
    query_admin(sql);
}

/// Runs one statement on the admin database; the first column of its first row, if a number.
fn query_admin(sql: &str) -> Option<u64> {
    let admin = std::env::var("ROSTERD_TEST_POSTGRES_URL")
        .expect("--backend postgres needs ROSTERD_TEST_POSTGRES_URL (scripts/test starts one)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin)
            .await
            .expect("PostgreSQL answers");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_optional(&pool)
            .await
            .expect("the statement runs");
        pool.close().await;
        row.and_then(|r| sqlx::Row::try_get::<i64, _>(&r, 0).ok())
            .map(|n| n as u64)
    })
}

/// A fresh database on the server `ROSTERD_TEST_POSTGRES_URL` names.
fn postgres_database() -> String {
    let admin = std::env::var("ROSTERD_TEST_POSTGRES_URL")
        .expect("--backend postgres needs ROSTERD_TEST_POSTGRES_URL (scripts/test starts one)");
    let name = format!("rosterd_bench_{}", std::process::id());
    run_on_admin(&format!("CREATE DATABASE {name}"));
    let base = admin
        .rsplit_once('/')
        .expect("a database URL")
        .0
        .to_string();
    format!("{base}/{name}")
}
