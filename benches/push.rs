//! The push benchmark: `cargo bench --bench push [-- --size 100000 --rules 2000] [--kind
//! okta [--okta-window-seconds 1] [--okta-limits-times 1] [--okta-initial-limits-times N]
//! [--concurrency 4] | --kind google [--google-window-seconds 1]]`.
//!
//! With `--kind google` the target is the emulator's Directory API: groups created one
//! request each, member changes in batch requests of 1,000 calls. It prints the calls (what
//! Google's quota counts, each call in a batch included) beside the HTTP requests, and the
//! time Google's default quota of 2,400 calls a minute imposes on them. With
//! `--google-window-seconds N` (or `--google-window-ms N`) that quota is switched on, per
//! window of N seconds (milliseconds) instead of a minute, rosterd paces its calls to its
//! default 2,000 a (shortened) minute, and any 403 `userRateLimitExceeded` fails the run.
//!
//! With `--kind okta` the target is the emulator's Okta API, with the rate limits Okta
//! documents for a Workforce Identity org switched on, per window of `--okta-window-seconds`
//! instead of a minute, each allowing `--okta-limits-times` times what Okta documents
//! (`--okta-initial-limits-times` for the initial sync, so that 20 million requests take
//! minutes, not weeks; `X-Rate-Limit-Reset` counts whole seconds, so a faster clock is more
//! per window, not shorter windows), with `--concurrency` requests in flight (Okta allows
//! an org 75): it prints the requests by
//! rate-limit bucket, the time those limits impose on them at Okta's real minute, and the
//! 429s the target had to answer (none, or it fails). The fewest Okta allows is one request
//! per member change, one lookup and one creation per new group, and the users found by
//! search or in pages of 200, whichever is fewer.
//!
//! It generates the organisation and the rule mix of the engine benchmark, pushes every group
//! to the SCIM emulator (an account per worker, 100 members per request, pages of 100), then
//! changes 1% of workers and syncs again. For each sync it prints the requests sent against
//! the fewest the target's limits allow, and the wall time of evaluating and storing, and of
//! pushing.
//!
//! The fewest requests: reads, one filter per user to resolve or one page per 100 of the
//! target's accounts, whichever is fewer (none when they are cached), plus one lookup per
//! group that has to be found or created; writes, one per 100 member changes of each group
//! (the create carries the first batch, so an empty group still costs one; a PATCH may carry
//! adds and removes together, as rosterd's do where they meet).

#![allow(
    clippy::expect_used,
    reason = "a benchmark program: a setup that fails should stop it loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use roaring::RoaringBitmap;
use rosterd::config::Config;
use rosterd::push::{self, Desired};
use rosterd::scim::emulator::{self, Emulator};
use rosterd::store::Store;

const TENANT: &str = "bench";
const PER_REQUEST: usize = 100;
const PAGE: usize = 100;

/// Which API the benchmark's target speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scim,
    /// Okta, its documented limits per window of `window` seconds, `times` over
    /// (`initial_times` for the initial sync), with `concurrency` requests in flight.
    Okta {
        window: u64,
        times: u64,
        initial_times: u64,
        concurrency: usize,
    },
    /// Google; with its default quota per window of this many milliseconds (0: none).
    Google(u64),
}

/// Google's largest page of users, and the calls a batch request may carry.
const GOOGLE_PAGE: usize = 500;
const GOOGLE_BATCH: usize = 1_000;

/// Calls a batch: Google's most, or under a quota, few enough that rosterd's pace keeps
/// each quota window within the quota (its own pace, plus a batch).
fn google_batch(window: u64) -> usize {
    if window > 0 {
        100
    } else {
        GOOGLE_BATCH
    }
}
/// The Directory API's default quota: calls a minute per user per Cloud project.
const GOOGLE_PER_MINUTE: f64 = 2_400.0;

/// Okta's largest page of users.
const OKTA_PAGE: usize = 200;

fn main() {
    let args = common::Args::new();
    let (size, rules) = args.size_and_rules((1_000, 40));
    let kind = match args.value("--kind", "scim".to_string()).as_str() {
        "scim" => Kind::Scim,
        "okta" => {
            let times = args.value("--okta-limits-times", 1);
            Kind::Okta {
                window: args.value("--okta-window-seconds", 1),
                times,
                initial_times: args.value("--okta-initial-limits-times", times),
                concurrency: args.value("--concurrency", 4),
            }
        }
        "google" => Kind::Google(match args.value("--google-window-ms", 0u64) {
            0 => args.value("--google-window-seconds", 0u64) * 1_000,
            ms => ms,
        }),
        other => panic!("--kind: scim, okta or google, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench(size, rules, kind));
}

async fn bench(size: usize, rule_count: usize, kind: Kind) {
    match kind {
        Kind::Scim => println!(
            "rosterd push benchmark: {size} workers x {rule_count} groups into the emulator"
        ),
        Kind::Okta {
            window,
            times,
            initial_times,
            concurrency,
        } => println!(
            "rosterd push benchmark: {size} workers x {rule_count} groups into the emulator's Okta API, with Okta's documented limits (Workforce Identity) {initial_times} times per {window} s window for the initial sync and {times} times after, {concurrency} requests in flight"
        ),
        Kind::Google(0) => println!(
            "rosterd push benchmark: {size} workers x {rule_count} groups into the emulator's Directory API (Google Workspace), {GOOGLE_BATCH} calls a batch"
        ),
        Kind::Google(window) => println!(
            "rosterd push benchmark: {size} workers x {rule_count} groups into the emulator's Directory API (Google Workspace), {} calls a batch, with Google's default quota (2,400 calls) per {window} ms window",
            google_batch(window)
        ),
    }
    let dir = std::env::temp_dir().join(format!("rosterd-push-bench-{}", std::process::id()));
    let mut workers = common::pushed_organisation(&dir, size, rule_count);

    let users: Vec<String> = workers.iter().map(|w| w.email.clone()).collect();
    let accounts = users.len();
    let quirks = match kind {
        Kind::Scim | Kind::Google(0) => emulator::Quirks::default(),
        Kind::Google(window) => emulator::Quirks {
            google_calls_per_window: GOOGLE_PER_MINUTE as u64,
            google_quota_window_ms: window,
            ..emulator::Quirks::default()
        },
        Kind::Okta {
            window,
            initial_times,
            ..
        } => emulator::Quirks {
            okta_documented_limits: true,
            okta_rate_limit_window_seconds: window,
            okta_documented_limits_times: initial_times,
            ..emulator::Quirks::default()
        },
    };
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().expect("an address"),
        emulator::Options {
            users,
            quirks,
            ..Default::default()
        },
    )
    .await
    .expect("the emulator starts");
    let config_path = write_config(&dir, &emulator.url(TENANT), kind);
    let config = Config::load(&config_path).expect("the config loads");
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let rules = rosterd::rules::load(
        &config.rules.dir,
        &rosterd::rules::Context::from_config(&config, &schema),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let before = sync(
        &config,
        &rules,
        &emulator,
        "initial sync",
        &Desired::default(),
        accounts,
        kind,
    )
    .await;
    if let Kind::Okta { window, times, .. } = kind {
        emulator.set_quirks(
            TENANT,
            emulator::Quirks {
                okta_documented_limits: true,
                okta_rate_limit_window_seconds: window,
                okta_documented_limits_times: times,
                ..emulator::Quirks::default()
            },
        );
        // The windows the initial sync spent under the larger limits end first.
        tokio::time::sleep(std::time::Duration::from_secs(window + 1)).await;
    }
    common::change_one_percent(&mut workers);
    common::write_csv(&workers, &dir.join("workers.csv"));
    let after = sync(
        &config,
        &rules,
        &emulator,
        "sync after 1% of workers change",
        &before,
        accounts,
        kind,
    )
    .await;
    // What verification costs a run on its own: `verify_every: 24h` over the default
    // `*/15 * * * *` schedule reads ceil(groups / 96) groups a run.
    sync(
        &config,
        &rules,
        &emulator,
        "sync with nothing changed (verification only)",
        &after,
        accounts,
        kind,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// One `rosterd sync`: evaluate and store, then push; prints its requests and times.
async fn sync(
    config: &Config,
    rules: &rosterd::rules::RuleSet,
    emulator: &Emulator,
    what: &str,
    before: &Desired,
    accounts: usize,
    kind: Kind,
) -> Desired {
    emulator.reset_counters(TENANT);
    let store = Store::open(config.database.expose())
        .await
        .expect("the store opens");
    let started = Instant::now();
    let inputs = rosterd::cycle::Inputs {
        config: std::sync::Arc::new(config.clone()),
        rules: std::sync::Arc::new(rules.clone()),
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
        now: rosterd::clock::now_utc(),
        kind: "sync",
    };
    rosterd::cycle::run(&inputs, &store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let evaluated = started.elapsed();
    let planning = Instant::now();
    let desired = Desired::from_store(&store, config)
        .await
        .expect("the desired state");
    // Planning alone, after the first sync: a dry run plans every pair and sends no write
    // (the users are cached by then, so it reads nothing either).
    let dry = push::Options {
        dry_run: true,
        ..push::Options::default()
    };
    if !before.members.is_empty() {
        push::run(config, rules, &desired, &store, &dry)
            .await
            .expect("the dry run");
    }
    let planned = planning.elapsed();
    emulator.reset_counters(TENANT);
    let pushing = Instant::now();
    let report = push::run(config, rules, &desired, &store, &push::Options::default())
        .await
        .expect("the push runs");
    let pushed = pushing.elapsed();
    store.close().await;
    let counters = emulator.counters(TENANT);
    let names: Vec<&str> = rules.groups().iter().map(|g| g.name.as_str()).collect();
    let (reads, writes, separate) = fewest(&names, before, &desired, accounts, kind);
    let changed: usize = report
        .targets
        .iter()
        .flat_map(|t| &t.groups)
        .map(|p| p.added + p.removed)
        .sum();
    println!("\n== {what}");
    println!(
        "   evaluate and store {:>9.2} s; plan (dry run) {:>7.2} s; push {:>9.2} s; {changed} member changes applied",
        evaluated.as_secs_f64(),
        planned.as_secs_f64(),
        pushed.as_secs_f64()
    );
    println!(
        "   {:.0} writes a second during the push",
        counters.writes as f64 / pushed.as_secs_f64().max(1e-9)
    );
    let verified: usize = report.targets.iter().map(|t| t.verified).sum();
    let verify_reads: u64 = report.targets.iter().map(|t| t.verify_reads).sum();
    println!(
        "   reads  {:>8} (fewest {reads:>8} for the changes; {verify_reads} more verify {verified} groups, and {} confirm cached user ids or list users)\n   writes {:>8} (fewest {writes:>8}; {separate} if adds and removes never shared a request)",
        counters.reads,
        counters.reads.saturating_sub(verify_reads + reads as u64),
        counters.writes
    );
    // What the change cost beside the fewest: verification's reads are the run's own check,
    // not the change's.
    let sent = counters.reads.saturating_sub(verify_reads) + counters.writes;
    let least = (reads + writes) as u64;
    println!(
        "   requests for the change {sent} against the fewest {least}: {:.3}x",
        sent as f64 / least.max(1) as f64
    );
    assert!(
        counters.writes * 10 <= writes as u64 * 11,
        "writes within 1.1x of the fewest: {} against {writes}",
        counters.writes
    );
    match kind {
        Kind::Okta { .. } => okta_limits(&counters, pushed.as_secs_f64()),
        Kind::Google(window) => {
            let (reads, writes): (u64, u64) = report
                .targets
                .iter()
                .fold((0, 0), |(r, w), t| (r + t.reads, w + t.writes));
            let minutes = counters.google_calls as f64 / GOOGLE_PER_MINUTE;
            let at_google = if minutes >= 60.0 {
                format!("{:.1} hours", minutes / 60.0)
            } else {
                format!("{minutes:.1} minutes")
            };
            println!(
                "   calls  {:>8} in {} batch requests (rosterd counted {reads} reads and {writes} writes, a batch as one); at Google's default 2,400 calls a minute at least {at_google} ({:.1} s here)",
                counters.google_calls,
                counters.google_batches,
                pushed.as_secs_f64()
            );
            if window > 0 {
                let refused = counters.by_status.get(&403).copied().unwrap_or(0);
                println!("   quota answers (403) under the quota per {window} ms: {refused}");
                assert_eq!(refused, 0, "the push kept within the quota");
            }
        }
        Kind::Scim => {}
    }
    for target in &report.targets {
        assert!(
            target.error.is_none(),
            "the push failed: {:?}",
            target.error
        );
        let held: Vec<_> = target
            .groups
            .iter()
            .filter_map(|g| g.held.as_ref())
            .collect();
        assert!(held.is_empty(), "nothing is held: {held:?}");
    }
    assert_eq!(
        emulator.groups(TENANT).len(),
        names.len(),
        "every group reached the emulator"
    );
    desired
}

/// The fewest reads and writes that take the target from `before` to `after` for the groups
/// `names` (empty ones too), with every user still to be found on the first sync and cached
/// on later ones, on a target holding `accounts` users. The third number counts writes were
/// adds and removes never to share a request.
fn fewest(
    names: &[&str],
    before: &Desired,
    after: &Desired,
    accounts: usize,
    kind: Kind,
) -> (usize, usize, usize) {
    // Okta: one request per member change, and a group is created empty.
    let (per_request, page, created_with) = match kind {
        Kind::Scim => (PER_REQUEST, PAGE, PER_REQUEST),
        Kind::Okta { .. } => (1, OKTA_PAGE, 0),
        // A group is created empty, then filled in batches.
        Kind::Google(window) => (google_batch(window), GOOGLE_PAGE, 0),
    };
    // Both states number workers the same way: they come from the same store.
    let none = RoaringBitmap::new();
    let first = before.members.is_empty();
    let (mut reads, mut writes, mut separate) = (0, 0, 0);
    for name in names {
        let members = after.members.get(*name).unwrap_or(&none);
        if first {
            // Found or created: one lookup, and the create carries the first batch (SCIM)
            // or nobody (Okta).
            reads += 1;
            let members = members.len() as usize;
            writes += if matches!(kind, Kind::Google(_)) {
                1 + members.div_ceil(per_request)
            } else if created_with == 0 {
                1 + members
            } else {
                members.div_ceil(created_with).max(1)
            };
        } else {
            let old = before.members.get(*name).unwrap_or(&none);
            let adds = (members - old).len() as usize;
            let removes = (old - members).len() as usize;
            writes += (adds + removes).div_ceil(per_request);
            separate += adds.div_ceil(per_request) + removes.div_ceil(per_request);
        }
    }
    let known: RoaringBitmap = before
        .members
        .values()
        .fold(RoaringBitmap::new(), |a, b| a | b);
    let wanted: RoaringBitmap = after
        .members
        .values()
        .fold(RoaringBitmap::new(), |a, b| a | b);
    let needed = (wanted - known).len() as usize;
    // A filter per user never resolved, or every account in pages if that is fewer: a page
    // cannot be asked for only the users wanted.
    reads += needed.min(accounts.div_ceil(page));
    if first {
        separate = writes;
    }
    (reads, writes, separate)
}

/// The requests by Okta rate-limit bucket, the time Okta's documented per-minute limits
/// impose on them (the buckets side by side, the org's 7,000 a minute over all), and the
/// 429s answered, which must be none.
fn okta_limits(counters: &emulator::Counters, seconds: f64) {
    let mut minutes: f64 = 0.0;
    for (bucket, count) in &counters.okta_buckets {
        let limit = rosterd::okta::documented_per_minute(bucket);
        let need = *count as f64 / limit as f64;
        minutes = minutes.max(need);
        println!("   {bucket:<18} {count:>9} requests ({limit}/min: {need:.1} min at Okta's rate)");
    }
    let total: u64 = counters.okta_buckets.values().sum();
    minutes = minutes.max(total as f64 / 7_000.0);
    let refused = counters.by_status.get(&429).copied().unwrap_or(0);
    let at_okta = if minutes >= 60.0 {
        format!("{:.1} hours", minutes / 60.0)
    } else {
        format!("{minutes:.1} minutes")
    };
    println!("   at Okta's documented limits at least {at_okta} ({seconds:.1} s here); 429 answered: {refused}");
    assert_eq!(refused, 0, "the push kept within the limits");
}

fn write_config(dir: &Path, url: &str, kind: Kind) -> PathBuf {
    let directory = common::sample_directory();
    let how = match kind {
        Kind::Scim => format!(
            "    requests_per_second: 1000000\n    concurrency: 4\n    patch: {{ max_members_per_request: {PER_REQUEST} }}\n    page_size: {PAGE}\n"
        ),
        Kind::Okta { concurrency, .. } => format!(
            "    kind: okta\n    requests_per_second: 1000000\n    concurrency: {concurrency}\n    page_size: {OKTA_PAGE}\n    max_retry_after_seconds: 120\n"
        ),
        Kind::Google(window) => {
            // rosterd's default pace (2,000 calls a minute), the minute shortened as the
            // emulator's quota window is; no pace without a quota.
            let per_minute = match window {
                0 => 100_000_000,
                w => 2_000 * 60_000 / w,
            };
            format!(
                "    kind: google_workspace\n    google: {{ group_email: \"{{name}}@groups.example.com\", batch_size: {batch}, calls_per_minute: {per_minute} }}\n    requests_per_second: 1000000\n    concurrency: 4\n    page_size: {GOOGLE_PAGE}\n",
                // Batches small enough that the pace keeps within each window.
                batch = google_batch(window),
            )
        }
    };
    let config = format!(
        "database: sqlite://{}\n{directory}rules:\n  dir: rules\ntargets:\n  bench:\n    url: {url}\n{how}    failsafe: {{ max_remove_percent: 100 }}\n",
        dir.join("rosterd.db").display()
    );
    let path = dir.join("rosterd.yaml");
    std::fs::write(&path, config).expect("the config is written");
    path
}
