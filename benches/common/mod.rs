//! What the benchmarks share: the rule mix over a generated organisation, the 1% change, and
//! writing an export.

#![allow(
    clippy::expect_used,
    dead_code,
    reason = "a benchmark helper: a setup that fails should stop it loudly; each bench uses part"
)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rosterd::directory::generate::{self, Worker};

/// The sample config's `directory:` section, reading `workers.csv` beside the config.
pub fn sample_directory() -> String {
    let sample =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"))
            .expect("the sample config");
    let start = sample.find("directory:").expect("a directory section");
    let end = sample.find("rules:\n").expect("a rules section");
    sample[start..end].replace("file: sample/workers.csv", "file: workers.csv")
}

/// `rosterd emulator --users-from-config` on `port`, in a process of its own (an account
/// per worker of the config's export), returned once it listens.
pub fn start_emulator(config: &Path, port: u16) -> std::process::Child {
    use std::io::BufRead;
    let mut emulator = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(config)
        .args(["emulator", "--users-from-config", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    if let Some(out) = emulator.stdout.take() {
        let mut first = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut first);
    }
    emulator
}

pub fn write_csv(workers: &[Worker], path: &Path) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("a temporary file"));
    generate::write_csv(workers, file).expect("writing the export");
}

/// 1% of workers change: a new department, or they leave. Which ones, in order.
pub fn change_one_percent(workers: &mut [Worker]) -> Vec<usize> {
    change_one_percent_seeded(workers, 9)
}

/// [`change_one_percent`] with another choice of workers and values for each `seed`.
pub fn change_one_percent_seeded(workers: &mut [Worker], seed: u64) -> Vec<usize> {
    let n = workers.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let departments: Vec<String> = distinct(workers, |w| w.department.clone());
    let mut changed = BTreeSet::new();
    for _ in 0..n / 100 {
        let w = rng.random_range(0..n);
        if rng.random_bool(0.2) {
            workers[w].status = "Terminated".into();
        } else {
            workers[w].department = departments[rng.random_range(0..departments.len())].clone();
        }
        changed.insert(w);
    }
    changed.into_iter().collect()
}

pub fn distinct(workers: &[Worker], f: impl Fn(&Worker) -> String) -> Vec<String> {
    workers
        .iter()
        .map(f)
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `count` groups of a realistic mix over the generated organisation's values.
pub fn rule_mix(workers: &[Worker], count: usize, seed: u64) -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let divisions = distinct(workers, |w| w.division.clone());
    let departments = distinct(workers, |w| w.department.clone());
    let countries = distinct(workers, |w| w.country.clone());
    let locations = distinct(workers, |w| w.location.clone());
    let types = distinct(workers, |w| w.worker_type.clone());
    let levels = distinct(workers, |w| w.management_level.clone());
    let managers: Vec<String> = {
        let ids: BTreeSet<&str> = workers
            .iter()
            .filter_map(|w| w.manager_id.as_deref())
            .collect();
        ids.into_iter().map(str::to_string).collect()
    };
    let pick =
        |rng: &mut rand_chacha::ChaCha8Rng, v: &[String]| v[rng.random_range(0..v.len())].clone();
    let predicate = |rng: &mut rand_chacha::ChaCha8Rng| -> String {
        match rng.random_range(0..8) {
            0 => format!("division == \"{}\"", pick(rng, &divisions)),
            1 => format!("department == \"{}\"", pick(rng, &departments)),
            2 => format!("country == \"{}\"", pick(rng, &countries)),
            3 => format!("location == \"{}\"", pick(rng, &locations)),
            4 => format!("job_level >= {}", rng.random_range(2..9)),
            5 => format!("worker_type == \"{}\"", pick(rng, &types)),
            6 => format!("hire_date < {}-01-01", rng.random_range(2012..2026)),
            _ => format!("management_level == \"{}\"", pick(rng, &levels)),
        }
    };
    let mut out = String::from("groups:\n");
    for g in 0..count {
        let roll = rng.random_range(0..100);
        let rule = match roll {
            0..=29 => predicate(&mut rng),
            30..=54 => {
                let k = rng.random_range(2..=4);
                (0..k)
                    .map(|_| predicate(&mut rng))
                    .collect::<Vec<_>>()
                    .join(" and ")
            }
            55..=69 => {
                let k = rng.random_range(2..=5);
                let items: Vec<String> = (0..k)
                    .map(|_| format!("\"{}\"", pick(&mut rng, &countries)))
                    .collect();
                format!(
                    "country in [{}] and {}",
                    items.join(", "),
                    predicate(&mut rng)
                )
            }
            70..=79 => format!(
                "({} or {}) and not {}",
                predicate(&mut rng),
                predicate(&mut rng),
                predicate(&mut rng)
            ),
            80..=84 => format!(
                "title startswith \"{}\"",
                ["Senior", "Staff", "Principal", "VP", "Director"][rng.random_range(0..5)]
            ),
            85..=87 => format!(
                "department contains \"{}\"",
                ["Engineering", "Sales", "Success", "Platform"][rng.random_range(0..4)]
            ),
            88..=89 => format!(
                "lower(title) matches \"^(senior|staff) .*engineer\" and {}",
                predicate(&mut rng)
            ),
            90..=95 if g > 0 => {
                let dep = rng.random_range(0..g);
                format!("member_of(\"g{dep}\") and {}", predicate(&mut rng))
            }
            _ => format!("reports_to(\"{}\")", pick(&mut rng, &managers)),
        };
        let _ = writeln!(out, "  - name: g{g}\n    kind: managed\n    rule: '{rule}'");
    }
    out
}

/// The benchmark's command line: `--name value` options, and whether `cargo bench` started
/// it (`cargo test --all-targets` runs each benchmark too, without `--bench`, as a smoke test).
pub struct Args {
    args: Vec<String>,
}

impl Args {
    pub fn new() -> Args {
        Args {
            args: std::env::args().collect(),
        }
    }

    /// The value after `--name`, parsed; `default` when it is not given.
    pub fn value<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.args
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.args.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: cannot read `{v}`"))
            })
            .unwrap_or(default)
    }

    /// Started by `cargo bench`, not as a smoke test.
    /// `--size` and `--rules` (100,000 x 2,000 by default) when benchmarking; `small` under
    /// `cargo test --all-targets` (no `--bench`), where a small run checks that it works.
    pub fn size_and_rules(&self, small: (usize, usize)) -> (usize, usize) {
        if self.benchmarking() {
            (
                self.value("--size", 100_000usize),
                self.value("--rules", 2000usize),
            )
        } else {
            small
        }
    }

    /// Whether `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    pub fn benchmarking(&self) -> bool {
        self.args.iter().any(|a| a == "--bench")
    }
}

/// A push benchmark's organisation in `dir`: `size` generated workers (`workers.csv`) and
/// the rule mix of `rule_count` groups, each pushed to the target `bench`
/// (`rules/bench.yaml`). The workers, for the benchmark to change.
pub fn pushed_organisation(dir: &Path, size: usize, rule_count: usize) -> Vec<Worker> {
    std::fs::create_dir_all(dir.join("rules")).expect("a temporary folder");
    let workers = generate::generate(size, 42);
    write_csv(&workers, &dir.join("workers.csv"));
    let mut rules_text = String::new();
    for line in rule_mix(&workers, rule_count, 7).lines() {
        rules_text.push_str(line);
        rules_text.push('\n');
        if line.starts_with("  - name:") {
            rules_text.push_str("    push: [bench]\n");
        }
    }
    std::fs::write(dir.join("rules/bench.yaml"), rules_text).expect("the rules are written");
    workers
}

/// This process's resident memory now, or its high-water mark (`VmRSS:`, `VmHWM:`), in MiB.
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resets this process's memory high-water mark (Linux), so that [`status_mib`]`("VmHWM:")`
/// measures what follows.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
