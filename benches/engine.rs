//! The engine benchmark: `cargo bench --bench engine [-- --sizes 100000,1000000 --rules 2000]`.
//!
//! For each size it generates the organisation with the project's generator and a realistic
//! rule mix (equality, conjunctions of 2-4 predicates, in-lists, or/not, a few
//! startswith/contains/regex, some member_of and reports_to), then prints wall time and peak
//! memory of every phase: load and type the export; check the rules; evaluate all groups; a
//! second evaluation after 1% of workers change, full and incremental; the diff between them; the whole plan
//! (load + check + evaluate + diff); and the per-worker evaluator on the same rules, as a
//! ratio. Peak memory is the process's high-water mark (VmHWM), reset before each phase.

#![allow(
    clippy::expect_used,
    reason = "a benchmark program: a setup that fails should stop it loudly"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

mod common;

use chrono::NaiveDate;
use rosterd::config::{Config, SourceFormat};
use rosterd::directory::generate;
use rosterd::directory::{self, Schema, Snapshot};
use rosterd::engine::{self, Evaluation};
use rosterd::rules::{self, RuleSet, SourceMap};

fn main() {
    let mut sizes = vec![100_000usize, 1_000_000];
    let mut rule_count = 2000usize;
    let mut simple_groups = 200usize;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" => {
                sizes = args[i + 1]
                    .split(',')
                    .map(|s| s.parse().expect("--sizes: numbers"))
                    .collect();
                i += 1;
            }
            "--rules" => {
                rule_count = args[i + 1].parse().expect("--rules: a number");
                i += 1;
            }
            "--simple-groups" => {
                simple_groups = args[i + 1].parse().expect("--simple-groups: a number");
                i += 1;
            }
            // `cargo bench` passes `--bench`.
            _ => {}
        }
        i += 1;
    }
    // `cargo test --all-targets` runs this program too, without `--bench`: a small run then
    // checks that it works without taking the suite's time.
    if !args.iter().any(|a| a == "--bench") {
        sizes = vec![2_000];
        rule_count = 100;
        simple_groups = 100;
    }
    let config = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"))
        .expect("the sample config loads");
    println!(
        "rosterd engine benchmark: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for n in sizes {
        bench(&config, n, rule_count, simple_groups);
    }
}

fn bench(config: &Config, n: usize, rule_count: usize, simple_groups: usize) {
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date");
    println!("\n== {n} workers x {rule_count} rules");
    // The generated data goes to files and is dropped, so that the memory measured is
    // rosterd's: the export's text while it loads, the snapshot, the rules, the evaluations.
    let dir = std::env::temp_dir().join(format!("rosterd-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let (export, changed_export) = (dir.join("workers.csv"), dir.join("workers-changed.csv"));
    let edited;
    let rules_text = {
        let mut workers = generate::generate(n, 42);
        common::write_csv(&workers, &export);
        let rules_text = common::rule_mix(&workers, rule_count, 7);
        edited = common::change_one_percent(&mut workers);
        common::write_csv(&workers, &changed_export);
        rules_text
    };
    let schema = Arc::new(Schema::from_config(&config.directory));

    let phase = Phase::start();
    let snapshot = load(&export, &schema);
    phase.report("load and type the export");

    let phase = Phase::start();
    let rules = check(&rules_text, config, &snapshot);
    phase.report("check the rules");

    let phase = Phase::start();
    drop(engine::evaluate(&snapshot, &rules, as_of));
    phase.report("evaluate all groups (the first time)");
    let before = repeated("evaluate all groups", || {
        engine::evaluate(&snapshot, &rules, as_of)
    });
    let memberships: usize = (0..rules.groups().len())
        .map(|g| before.members(g).count_ones(..))
        .sum();
    println!("   {memberships} memberships");

    // 50 guardrails over the same groups: 20 `never` over two groups, 20 `requires`, 10 sizes.
    let names: Vec<&str> = rules.groups().iter().map(|g| g.name.as_str()).collect();
    let mut guarded = format!("{rules_text}\nguardrails:\n");
    for i in 0..50 {
        let (a, b) = (
            names[(i * 37) % names.len()],
            names[(i * 53 + 11) % names.len()],
        );
        let check = match i % 5 {
            0 | 1 => {
                format!("never: member_of(\"{a}\") and member_of(\"{b}\") and status != \"Active\"")
            }
            2 | 3 => format!("group: {a}\n    requires: member_of(\"{b}\") or job_level >= 0"),
            _ => format!("group: {a}\n    max_members: {n}"),
        };
        guarded.push_str(&format!(
            "  - name: guard-{i}\n    on_violation: warn\n    {check}\n"
        ));
    }
    let with_guardrails = check(&guarded, config, &snapshot);
    assert_eq!(with_guardrails.guardrails().len(), 50);
    let evaluate_ms = median_ms(|| engine::evaluate(&snapshot, &rules, as_of));
    let guardrails_ms =
        median_ms(|| engine::guardrails::check(&snapshot, &with_guardrails, &before));
    println!(
        "{:<74} {:>9.2} ms  {:.1}% of evaluating all groups ({:.2} ms)",
        format!("check 50 guardrails on the evaluation (median of {RUNS})"),
        guardrails_ms,
        guardrails_ms / evaluate_ms * 100.0,
        evaluate_ms
    );

    let changed = load(&changed_export, &schema);
    let phase = Phase::start();
    let alignment = changed.align(&snapshot).expect("the same attributes");
    let changed_workers = alignment.changed.clone();
    phase.report("find the workers that changed (row digests compared)");
    assert!(changed_workers.iter().all(|w| edited.contains(w)));
    let after = repeated("re-evaluate after 1% of workers change (full)", || {
        engine::evaluate(&changed, &rules, as_of)
    });

    // Each run updates its own copy of the previous evaluation, made before the clock starts.
    let incremental = repeated_with(
        &format!(
            "re-evaluate after 1% of workers change (incremental: {} workers)",
            changed_workers.len()
        ),
        || before.clone(),
        |prev| engine::evaluate_incremental(prev, &snapshot, &changed, &alignment, &rules, as_of).0,
    );
    for g in 0..rules.groups().len() {
        assert_eq!(
            incremental.members(g),
            after.members(g),
            "incremental differs on group {g}"
        );
    }
    drop(incremental);

    let changes = repeated("diff against the previous evaluation", || {
        diff(&before, &after, rules.groups().len())
    });
    println!("   {changes} membership changes");

    drop((before, after, changed));
    let phase = Phase::start();
    let snapshot2 = load(&changed_export, &schema);
    let rules2 = check(&rules_text, config, &snapshot2);
    let again = engine::evaluate(&snapshot2, &rules2, as_of);
    let previous = engine::evaluate(&snapshot, &rules, as_of);
    let plan_changes = diff(&previous, &again, rules2.groups().len());
    phase.report("whole plan: load + check + evaluate + diff (the previous evaluation included)");
    assert_eq!(plan_changes, changes);
    drop((again, previous, snapshot2, rules2));

    // The per-worker evaluator on the first groups (member_of only names earlier ones).
    let prefix = prefix_rules(&rules_text, simple_groups.min(rule_count));
    let small = check(&prefix, config, &snapshot);
    let t = Instant::now();
    let columnar = engine::evaluate(&snapshot, &small, as_of);
    let columnar_time = t.elapsed();
    let t = Instant::now();
    let simple = engine::evaluate_simple(&snapshot, &small, as_of);
    let simple_time = t.elapsed();
    for g in 0..small.groups().len() {
        assert_eq!(
            columnar.members(g),
            simple.members(g),
            "the evaluators disagree on group {g}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "   per-worker evaluator on the first {} groups: {:.1} ms, columnar {:.2} ms: {:.0}x faster (same memberships)",
        small.groups().len(),
        simple_time.as_secs_f64() * 1e3,
        columnar_time.as_secs_f64() * 1e3,
        simple_time.as_secs_f64() / columnar_time.as_secs_f64().max(1e-9)
    );
}

/// Reads and loads an export as `rosterd` does: the whole text, then the typed snapshot.
fn load(path: &Path, schema: &Arc<Schema>) -> Snapshot {
    let text = std::fs::read_to_string(path).expect("the export reads");
    directory::load_from_str(
        &text,
        SourceFormat::Csv,
        "bench.csv",
        Arc::clone(schema),
        5.0,
    )
    .expect("the generated export loads")
    .0
}

fn check(text: &str, config: &Config, snapshot: &Snapshot) -> RuleSet {
    let mut sources = SourceMap::default();
    sources.add(
        "rules/bench.yaml",
        Path::new("rules/bench.yaml"),
        text.to_string(),
    );
    rules::check_sources(
        sources,
        &rules::Context::from_config(config, snapshot.schema()),
    )
    .unwrap_or_else(|e| panic!("the generated rules check: {e}"))
}

fn diff(a: &Evaluation, b: &Evaluation, groups: usize) -> usize {
    (0..groups)
        .map(|g| {
            let mut x = a.members(g).clone();
            x.symmetric_difference_with(b.members(g));
            x.count_ones(..)
        })
        .sum()
}

/// The YAML of the first `k` groups of a generated rule file.
fn prefix_rules(text: &str, k: usize) -> String {
    let mut out = String::new();
    let mut seen = 0;
    for line in text.lines() {
        if line.starts_with("  - name:") {
            seen += 1;
            if seen > k {
                break;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// How many times the phases that take milliseconds run; they report the median, because
/// one run on a shared machine varies by a third.
const RUNS: usize = 9;

/// The median wall time of [`RUNS`] runs, in milliseconds.
fn median_ms<T>(mut run: impl FnMut() -> T) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            drop(run());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

/// Runs a phase [`RUNS`] times and reports the median wall time and the highest peak; the
/// last run's result is returned (the others are dropped outside the clock).
fn repeated<T>(what: &str, mut run: impl FnMut() -> T) -> T {
    repeated_with(what, || (), |()| run())
}

/// As [`repeated`], with an input made by `setup` before each run's clock starts.
fn repeated_with<S, T>(what: &str, mut setup: impl FnMut() -> S, mut run: impl FnMut(S) -> T) -> T {
    let mut times = Vec::new();
    let mut peak: f64 = 0.0;
    let mut before = 0.0;
    let mut result = None;
    for i in 0..RUNS {
        drop(result.take());
        let input = setup();
        let phase = Phase::start();
        if i == 0 {
            before = phase.before;
        }
        result = Some(run(input));
        times.push(phase.start.elapsed());
        peak = peak.max(status_mib("VmHWM:"));
    }
    times.sort();
    println!(
        "{:<74} {:>9.2} ms  peak {:>6.0} MiB (held before: {:>5.0} MiB)",
        format!("{what} (median of {RUNS})"),
        times[RUNS / 2].as_secs_f64() * 1e3,
        peak,
        before
    );
    result.expect("at least one run")
}

/// A phase's wall time and the peak memory reached during it.
struct Phase {
    start: Instant,
    /// Resident memory when the phase started.
    before: f64,
}

impl Phase {
    fn start() -> Phase {
        // Writing 5 resets the peak resident set size (Linux 4.0+).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Phase {
            start: Instant::now(),
            before: status_mib("VmRSS:"),
        }
    }

    fn report(self, what: &str) {
        let elapsed = self.start.elapsed();
        println!(
            "{what:<74} {:>9.2} ms  peak {:>6.0} MiB (held before: {:>5.0} MiB)",
            elapsed.as_secs_f64() * 1e3,
            status_mib("VmHWM:"),
            self.before
        );
    }
}

/// A memory figure of this process from /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
