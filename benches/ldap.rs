//! The LDAP push benchmark: `cargo bench --bench ldap [-- --size 100000 --rules 2000
//! --batch 500]`.
//!
//! It starts a private OpenLDAP server (Debian's slapd, as the tests do: TLS, rosterd bound
//! as a service account, `multival member` so that a modify of a large group does not
//! rewrite the whole entry) holding a user per worker, generates the organisation and the
//! rule mix of the engine benchmark with every group pushed to it, syncs, changes 1% of the
//! workers and syncs again. For each sync it prints the requests rosterd sent (and the
//! writes slapd's own monitor counted) against the fewest LDAP allows with modifies of
//! `--batch` member values, and the times.
//!
//! The fewest: writes, one add per new group carrying its first batch of members, then one
//! modify per batch of member changes of each group (adds and deletes in the same modify
//! where they meet); reads, one search per group to find it before it is made (and one to
//! read it back with its id), and the users found in one paged search (a request per page)
//! or one search each, whichever is fewer.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark program: a setup that fails should stop it loudly"
)]

mod common;
#[path = "../tests/common/ldap_server.rs"]
#[allow(
    dead_code,
    reason = "the tests' server, of which the benchmark uses a part"
)]
mod ldap_server;

use std::path::{Path, PathBuf};
use std::time::Instant;

use roaring::RoaringBitmap;
use rosterd::config::Config;
use rosterd::push::{self, Desired};
use rosterd::store::Store;

const PAGE: u64 = 1_000;

fn main() {
    let args = common::Args::new();
    // `cargo test` runs it small, as a smoke test.
    let (size, rules) = args.size_and_rules((1_000, 40));
    let batch: usize = args.value("--batch", 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench(size, rules, batch));
}

async fn bench(size: usize, rule_count: usize, batch: usize) {
    println!(
        "rosterd LDAP push benchmark: {size} workers x {rule_count} groups into OpenLDAP (slapd), {batch} member values a modify"
    );
    let dir = std::env::temp_dir().join(format!("rosterd-ldap-bench-{}", std::process::id()));
    let mut workers = common::pushed_organisation(&dir, size, rule_count);
    let emails: Vec<String> = workers.iter().map(|w| w.email.clone()).collect();
    let started = Instant::now();
    // Without slapd (outside CI) there is nothing to measure.
    let Some(server) = ldap_server::Server::start(ldap_server::Flavor::Openldap, &emails).await
    else {
        return;
    };
    println!(
        "   slapd holds {} users ({:.1} s to load)",
        emails.len(),
        started.elapsed().as_secs_f64()
    );
    std::env::set_var("ROSTERD_BENCH_LDAP_PASSWORD", ldap_server::ROSTERD_PASSWORD);
    let config_path = write_config(&dir, &server, batch);
    let config = Config::load(&config_path).expect("the config loads");
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let rules = rosterd::rules::load(
        &config.rules.dir,
        &rosterd::rules::Context::from_config(&config, &schema),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut admin = server.admin().await;
    let run = Run {
        config: &config,
        rules: &rules,
        server: &server,
        users: emails.len() as u64,
        batch: batch as u64,
    };
    let before = run
        .sync("initial sync", &Desired::default(), &mut admin)
        .await;
    common::change_one_percent(&mut workers);
    common::write_csv(&workers, &dir.join("workers.csv"));
    run.sync("sync after 1% of workers change", &before, &mut admin)
        .await;
    let db = dir_size(&server.dir_path().expect("slapd's folder").join("db"));
    println!("\n   slapd's database: {:.0} MiB", db as f64 / 1_048_576.0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

struct Run<'a> {
    config: &'a Config,
    rules: &'a rosterd::rules::RuleSet,
    server: &'a ldap_server::Server,
    users: u64,
    batch: u64,
}

impl Run<'_> {
    /// One `rosterd sync`: evaluate and store, then push; prints its requests and times.
    async fn sync(&self, what: &str, before: &Desired, admin: &mut ldap3::Ldap) -> Desired {
        let store = Store::open(self.config.database.expose())
            .await
            .expect("the store opens");
        let started = Instant::now();
        let inputs = rosterd::cycle::Inputs {
            config: std::sync::Arc::new(self.config.clone()),
            rules: std::sync::Arc::new(self.rules.clone()),
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
            now: rosterd::clock::now_utc(),
            kind: "sync",
        };
        rosterd::cycle::run(&inputs, &store)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let evaluated = started.elapsed();
        let desired = Desired::from_store(&store, self.config)
            .await
            .expect("the desired state");
        let served_before = self.server.writes(admin).await;
        let pushing = Instant::now();
        let report = push::run(
            self.config,
            self.rules,
            &desired,
            &store,
            &push::Options::default(),
        )
        .await
        .expect("the push runs");
        let pushed = pushing.elapsed();
        store.close().await;
        let served = self.server.writes(admin).await - served_before;
        let target = &report.targets[0];
        assert!(
            target.error.is_none(),
            "the push failed: {:?}",
            target.error
        );
        assert_eq!(report.failed(), 0, "{report:?}");
        let changed: u64 = target
            .groups
            .iter()
            .map(|p| (p.added + p.removed) as u64)
            .sum();
        let (reads, writes) = self.fewest(before, &desired);
        println!("\n== {what}");
        println!(
            "   evaluate and store {:>8.2} s; push {:>8.2} s; {changed} member changes applied ({:.0} a second)",
            evaluated.as_secs_f64(),
            pushed.as_secs_f64(),
            changed as f64 / pushed.as_secs_f64().max(1e-9)
        );
        println!(
            "   writes {:>8} (fewest {writes:>8}, {:.3}x; slapd's monitor counted {served})",
            target.writes,
            target.writes as f64 / writes.max(1) as f64
        );
        println!(
            "   reads  {:>8} (fewest {reads:>8} for the changes; {} more verify {} groups)",
            target.reads, target.verify_reads, target.verified
        );
        desired
    }

    /// The fewest reads and writes from `before` to `after`, every group's changes in
    /// modifies of `batch` values (adds and deletes counted together, as one modify carries
    /// both), the users to find listed in pages or searched one each.
    fn fewest(&self, before: &Desired, after: &Desired) -> (u64, u64) {
        let none = RoaringBitmap::new();
        let first = before.members.is_empty();
        let (mut reads, mut writes) = (0u64, 0u64);
        for group in self.rules.groups() {
            let new = after.members.get(&group.name).unwrap_or(&none);
            if first {
                // Looked for, made with its first batch, read back for its id.
                reads += 2;
                writes += new.len().max(1).div_ceil(self.batch);
            } else {
                let old = before.members.get(&group.name).unwrap_or(&none);
                writes += ((new - old).len() + (old - new).len()).div_ceil(self.batch);
            }
        }
        let union = |d: &Desired| d.members.values().fold(RoaringBitmap::new(), |a, b| a | b);
        let needed = (union(after) - union(before)).len();
        reads += needed.min(self.users.div_ceil(PAGE));
        (reads, writes)
    }
}

fn write_config(dir: &Path, server: &ldap_server::Server, batch: usize) -> PathBuf {
    let directory = common::sample_directory();
    let config = format!(
        "database: sqlite://{db}\n{directory}rules:\n  dir: rules\ntargets:\n  bench:\n    kind: ldap\n    url: {url}\n    auth: {{ simple: {{ bind_dn: \"{bind}\", password_env: ROSTERD_BENCH_LDAP_PASSWORD }} }}\n    tls: {{ ca_file: {ca} }}\n    ldap: {{ group_base: \"{groups}\", user_base: \"{people}\", batch_size: {batch} }}\n    requests_per_second: 1000000\n    concurrency: 4\n    page_size: {PAGE}\n    failsafe: {{ max_remove_percent: 100 }}\n",
        db = dir.join("rosterd.db").display(),
        url = server.url(),
        bind = server.bind_dn(),
        ca = server.ca_file().display(),
        groups = server.groups_base(),
        people = server.people(),
    );
    let path = dir.join("rosterd.yaml");
    std::fs::write(&path, config).expect("the config is written");
    path
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                // mdb's file is sparse: count the blocks it holds.
                .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
                .sum()
        })
        .unwrap_or(0)
}
