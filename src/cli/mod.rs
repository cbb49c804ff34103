//! The `rosterd` commands. `main.rs` parses arguments; each command here loads what it needs,
//! prints, and returns the exit status: 0 ok, 1 the config, rules or data have errors,
//! 2 usage (bad arguments, an unknown worker or group named on the command line), 3 held by a
//! failsafe (waiting for `rosterd approve`), 4 some pushes failed (the report says which), 5 (`status`) a target is not healthy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;

use crate::config::Config;
use crate::directory::{self, LoadReport, Snapshot};

use crate::engine::{self, Evaluation};
use crate::rules::{self, RuleSet};

mod access;
mod check;
mod explain;
mod plan;
mod push;
mod rule_tests;
mod state;

pub use access::{decisions, review, reviews, ReviewArgs};
pub use check::check;

/// `rosterd run`: the daemon, until SIGTERM or SIGINT.
pub fn run(global: &Global) -> Result<(), CliError> {
    // The daemon evaluates as of each run's own day; a date given here would be ignored.
    if let Some(date) = global.as_of {
        return Err(CliError::Usage(format!(
            "`--as-of {date}` does not apply to `rosterd run`: the daemon evaluates each run as of its own day (UTC)\nhelp: to see what a date does, use `rosterd plan --as-of {date}`, or `rosterd sync --as-of {date}` to apply it once"
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    runtime
        .block_on(crate::daemon::run(global.config.clone()))
        .map_err(|e| CliError::Invalid(e.to_string()))
}
pub use explain::explain;
pub use plan::plan;
pub use push::{approve_push, emulator, holds, push, status, sync, PushArgs, PUSH_FAILED};
pub use rule_tests::test;
pub use state::{
    approve_snapshot, audited_worker, evaluate, history, members, migrate, runs, HELD,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// JUnit XML, for CI systems: `rosterd test` only.
    Junit,
    /// CSV with a header row, for auditors: `rosterd decisions` only.
    Csv,
}

/// Options every command takes.
#[derive(Debug, Clone)]
pub struct Global {
    pub config: PathBuf,
    /// The evaluation date; default today in UTC.
    pub as_of: Option<NaiveDate>,
    pub format: Format,
}

impl Global {
    pub fn as_of(&self) -> NaiveDate {
        self.as_of.unwrap_or_else(crate::clock::today_utc)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments; exit 2.
    #[error("{0}")]
    Usage(String),
    /// The config, rules or data are wrong; exit 1. The message is ready to print.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The message as printed: prefixed with `error: ` unless it is compiler-style
    /// diagnostics, which carry their own (`rules/x.yaml:3:5: error: ...`).
    pub fn render(&self) -> String {
        let text = self.to_string();
        let diagnostics = text
            .lines()
            .next()
            .is_some_and(|l| l.contains(": error: ") || l.contains(": warning: "));
        if diagnostics {
            text
        } else {
            format!("error: {text}")
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Invalid(_) | CliError::Output(_) => ExitCode::from(1),
        }
    }
}

/// Config, directory and rules loaded, ready to evaluate.
pub struct Workspace {
    pub config: Config,
    pub snapshot: Snapshot,
    pub report: LoadReport,
    pub rules: RuleSet,
    /// The export's checksum, by which the store knows a snapshot.
    pub checksum: String,
}

impl Workspace {
    pub fn load(global: &Global) -> Result<Self, CliError> {
        let RulesOnly { config, rules } = Self::load_rules_only(global)?;
        let (snapshot, report, checksum) = block_on(async {
            crate::fetch::load_with_checksum(&config.directory)
                .await
                .map_err(|e| CliError::Invalid(e.to_string()))
        })?;
        Ok(Workspace {
            config: std::sync::Arc::unwrap_or_clone(config),
            snapshot,
            report,
            rules: std::sync::Arc::unwrap_or_clone(rules),
            checksum,
        })
    }

    /// Config and rules, without reading the export (the cycle reads it itself).
    pub fn load_rules_only(global: &Global) -> Result<RulesOnly, CliError> {
        let config = load_config(&global.config)?;
        let schema = crate::directory::Schema::from_config(&config.directory);
        let rules = rules::load(
            &config.rules.dir,
            &rules::Context::from_config(&config, &schema),
        )
        .map_err(|e| CliError::Invalid(e.to_string()))?;
        Ok(RulesOnly {
            config: config.into(),
            rules: rules.into(),
        })
    }

    pub fn evaluate(&self, as_of: NaiveDate) -> Evaluation {
        engine::evaluate(&self.snapshot, &self.rules, as_of)
    }

    /// A worker named on the command line, by key or email.
    pub fn worker(&self, key_or_email: &str) -> Result<usize, CliError> {
        self.snapshot.find(key_or_email).ok_or_else(|| {
            CliError::Usage(format!(
                "no worker `{key_or_email}` in {}\nhelp: name a worker by key or by email",
                self.report.source
            ))
        })
    }

    /// A group named on the command line.
    pub fn group(&self, name: &str) -> Result<usize, CliError> {
        self.rules.lookup(name).ok_or_else(|| {
            let mut msg = format!("no group `{name}` in the rules");
            if let Some(best) = rules::diagnostic::did_you_mean(name, self.rules.names()) {
                msg.push_str(&format!("\nhelp: did you mean `{best}`?"));
            }
            CliError::Usage(msg)
        })
    }
}

/// Config and checked rules.
pub struct RulesOnly {
    pub config: std::sync::Arc<Config>,
    pub rules: std::sync::Arc<RuleSet>,
}

/// The config, and the rules when they load: for the commands over the stored state, which
/// still answer (with less to say) while the rules on disk are broken.
pub(crate) fn config_and_rules(global: &Global) -> Result<(Config, Option<RuleSet>), CliError> {
    match Workspace::load_rules_only(global) {
        Ok(ws) => Ok((
            std::sync::Arc::unwrap_or_clone(ws.config),
            Some(std::sync::Arc::unwrap_or_clone(ws.rules)),
        )),
        Err(_) => Ok((load_config(&global.config)?, None)),
    }
}

/// Runs a future to completion on a runtime of its own: the CLI is synchronous around its
/// few database calls.
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// Opens the store, runs `f` on it, and closes it whatever `f` returned.
pub(crate) fn with_store<T>(
    config: &Config,
    f: impl AsyncFnOnce(&crate::store::Store) -> Result<T, CliError>,
) -> Result<T, CliError> {
    block_on(async {
        let store = open_store(config).await?;
        let result = f(&store).await;
        store.close().await;
        result
    })
}

pub(crate) async fn open_store(config: &Config) -> Result<crate::store::Store, CliError> {
    let url = config
        .database_url()
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    crate::store::Store::open(url)
        .await
        .map_err(|e| CliError::Invalid(e.to_string()))
}

/// A store error for a command that names a record: a missing or wrong-state record is the
/// user's mistake (exit 2), anything else the installation's (exit 1).
pub(crate) fn named_record_error(e: crate::store::StoreError) -> CliError {
    match e {
        crate::store::StoreError::NotFound(m) | crate::store::StoreError::Conflict(m) => {
            CliError::Usage(m)
        }
        e => CliError::Invalid(e.to_string()),
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::Invalid(e.to_string())
    }
}

pub fn load_config(path: &Path) -> Result<Config, CliError> {
    Config::load(path).map_err(|e| match &e {
        // No such file: the command was called wrong (exit 2), whichever way it was named.
        crate::config::ConfigError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let help = if path == Path::new(crate::config::DEFAULT_PATH) {
                "run rosterd where `rosterd.yaml` is, or pass `--config FILE`"
            } else {
                "`--config` names the daemon's config file; check the path"
            };
            CliError::Usage(format!("{e}\nhelp: {help}"))
        }
        _ => CliError::Invalid(e.to_string()),
    })
}

/// Writes `text` to stdout.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CliError::Output(e.into()))?;
    text.push('\n');
    print(&text)
}

/// Writes a synthetic export of `workers` workers.
pub fn generate(
    workers: usize,
    seed: u64,
    format: crate::config::SourceFormat,
    output: Option<&Path>,
) -> Result<(), CliError> {
    if !(1..=10_000_000).contains(&workers) {
        return Err(CliError::Usage(
            "--workers must be from 1 to 10000000".into(),
        ));
    }
    let people = directory::generate::generate(workers, seed);
    let sink: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        crate::config::SourceFormat::Csv => directory::generate::write_csv(&people, sink)?,
        crate::config::SourceFormat::WorkdayJson => {
            directory::generate::write_workday_json(&people, sink)?
        }
    }
    Ok(())
}
