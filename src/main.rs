use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use rosterd::cli::{self, CliError, Format, Global};
use rosterd::config::SourceFormat;

/// rosterd: group memberships from the HR export and rules kept in git.
#[derive(Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Args {
    /// The daemon config file, for the command that follows (all but `generate`); the same
    /// as the command's own `--config`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Evaluate as of this date (YYYY-MM-DD), for the command that follows when it takes a
    /// date (check, test, plan, explain, evaluate, sync, history); the same as the
    /// command's own `--as-of`.
    #[arg(long, value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// Output format (text, json, or junit for `test`), for the command that follows when
    /// it has that output; the same as the command's own `--format`.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Log what the command does on stderr: -v warnings, -vv progress, -vvv details
    /// (`RUST_LOG` overrides). Without it a command says what it found in its own output.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// What every command's exit status means.
const EXIT_CODES: &str = "Exit status:
  0  done
  1  it failed: an error, a check with errors, a rule test that failed
  2  the command was called wrong: an unknown option, group, worker or file
  3  held: the failsafe or a guardrail holds a snapshot or a push (evaluate, push, sync)
  4  some pushes failed (push, sync)
  5  a connected target is not healthy (status)";

/// `--config`, on every command that reads the config (all but `generate`).
#[derive(clap::Args, Clone)]
struct Conf {
    /// The daemon config file [default: rosterd.yaml].
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `--as-of`, on the commands that evaluate.
#[derive(clap::Args, Clone, Copy)]
struct When {
    /// Evaluate as of this date (YYYY-MM-DD) instead of today (UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<NaiveDate>,
}

/// `--format`, on the commands with an output for programs.
#[derive(clap::Args, Clone, Copy)]
struct Output {
    /// Output format: text, or json for a program to read.
    #[arg(long, value_enum)]
    format: Option<TextOrJson>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

/// `rosterd decisions`'s `--format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuditFormat {
    Text,
    Json,
    Csv,
}

/// `rosterd test`'s `--format`.
#[derive(clap::Args, Clone, Copy)]
struct TestOutput {
    /// Output format: text, json for a program to read, or junit (JUnit XML) for CI systems.
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: sync on the config's schedule, reload rules when they change, serve
    /// the admin API; stops on SIGTERM or SIGINT.
    #[command(after_help = EXIT_CODES)]
    Run {
        #[command(flatten)]
        conf: Conf,
        /// Log JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
        /// Refused with what to use instead: the daemon evaluates each run as of its day.
        #[arg(long, hide = true, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
    },
    /// Check the config, the HR export and every rule file; print all errors and warnings.
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Run the rule tests written beside the rules (exit 1: a test failed); `--format junit`
    /// for CI systems.
    #[command(after_help = EXIT_CODES)]
    Test {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: TestOutput,
    },
    /// Show what the rules make of the export: members per group, or one group's members.
    #[command(after_help = EXIT_CODES)]
    Plan {
        #[command(flatten)]
        conf: Conf,
        /// List this group's members.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Explain why a worker is (or is not) in a group: every sub-expression's value.
    #[command(after_help = EXIT_CODES)]
    Explain {
        #[command(flatten)]
        conf: Conf,
        /// The worker, by key or email.
        worker: String,
        /// The group; without it, every group the worker is in.
        group: Option<String>,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Refresh the HR snapshot, evaluate the rules and record the run (exit 3: held by the
    /// failsafe).
    #[command(after_help = EXIT_CODES)]
    Evaluate {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Push the stored memberships to the targets (exit 3: a push is held by the failsafe;
    /// 4: some pushes failed).
    #[command(after_help = EXIT_CODES)]
    Push {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        push: PushFlags,
        #[command(flatten)]
        out: Output,
    },
    /// One full cycle: refresh the export, evaluate, record and push (exit 3: a snapshot or a
    /// push is held; 4: some pushes failed).
    #[command(after_help = EXIT_CODES)]
    Sync {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        push: PushFlags,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Per target: its health, each group's last verification, pending and failed changes,
    /// holds, workers without an account (exit 5: a connected target is not healthy).
    #[command(after_help = EXIT_CODES)]
    Status {
        #[command(flatten)]
        conf: Conf,
        #[command(flatten)]
        out: Output,
    },
    /// Serve the target emulator (for trying rosterd out and for tests): each first path
    /// segment is a tenant, spoken to over SCIM 2.0, under `/TENANT/api/v1` Okta's API, or
    /// under `/TENANT/admin/directory/v1` (and `/TENANT/batch`) Google's Directory API.
    #[command(after_help = EXIT_CODES)]
    Emulator {
        #[command(flatten)]
        conf: Conf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8990")]
        listen: std::net::SocketAddr,
        /// Start every tenant with a user for each worker in the config's export.
        #[arg(long)]
        users_from_config: bool,
        /// Require the bearer token held by this environment variable.
        #[arg(long)]
        token_env: Option<String>,
    },
    /// The stored members of a group.
    #[command(after_help = EXIT_CODES)]
    Members {
        #[command(flatten)]
        conf: Conf,
        /// The group, by its name in the rules (or in the audit, once dropped).
        group: String,
        #[command(flatten)]
        out: Output,
    },
    /// Who was in a group on a date, reconstructed from the audit; or one worker's timeline.
    #[command(after_help = EXIT_CODES)]
    History {
        #[command(flatten)]
        conf: Conf,
        /// The group, by its name in the rules (or in the audit, once dropped).
        group: String,
        /// One worker's timeline in the group.
        #[arg(long)]
        worker: Option<String>,
        /// The date (default: --as-of, or today).
        #[arg(long, value_parser = parse_date)]
        at: Option<NaiveDate>,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// Recent runs, newest first.
    #[command(after_help = EXIT_CODES)]
    Runs {
        #[command(flatten)]
        conf: Conf,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Pushes held by the failsafe or a guardrail; with an ID, who that push would remove and
    /// add, and why.
    #[command(after_help = EXIT_CODES)]
    Holds {
        #[command(flatten)]
        conf: Conf,
        /// A hold's id, as `rosterd holds` lists it.
        id: Option<i64>,
        #[command(flatten)]
        out: Output,
    },
    /// Release what the failsafe holds.
    #[command(after_help = EXIT_CODES)]
    Approve {
        #[command(subcommand)]
        what: Approve,
    },
    /// Entries of hybrid and manual groups due for an access review: never reviewed, last
    /// reviewed `review_every` days ago, or expiring within 14 days.
    #[command(after_help = EXIT_CODES)]
    Reviews {
        #[command(flatten)]
        conf: Conf,
        /// Also list what falls due within this many days.
        #[arg(long, default_value_t = 0)]
        within: u32,
        /// Only the entries this person (by email) approves.
        #[arg(long)]
        approver: Option<String>,
        /// Also tell the webhooks of `notifications` (event `reviews_due`) when any are due:
        /// for a daily cron job.
        #[arg(long)]
        notify: bool,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        out: Output,
    },
    /// The audit of access decisions (grants, denials, review keeps and removals), for one
    /// group or all, over a period; `--format csv` for auditors.
    #[command(after_help = EXIT_CODES)]
    Decisions {
        #[command(flatten)]
        conf: Conf,
        /// Only this group's decisions.
        #[arg(long)]
        group: Option<String>,
        /// From this day (YYYY-MM-DD, UTC), included.
        #[arg(long, value_parser = parse_date)]
        from: Option<NaiveDate>,
        /// To this day (YYYY-MM-DD, UTC), included.
        #[arg(long, value_parser = parse_date)]
        to: Option<NaiveDate>,
        /// Output format: text, json, or csv (one row per decision).
        #[arg(long, value_enum)]
        format: Option<AuditFormat>,
    },
    /// An access review's decision, committed to the rules repository (on a branch for
    /// review, or on the branch itself with `requests.direct_commit`) once the changed rules
    /// pass `check` and `test`.
    #[command(after_help = EXIT_CODES)]
    Review {
        #[command(subcommand)]
        what: Review,
    },
    /// Apply the database migrations.
    #[command(after_help = EXIT_CODES)]
    Migrate {
        #[command(flatten)]
        conf: Conf,
    },
    /// Write a synthetic HR export (deterministic for a seed).
    #[command(after_help = EXIT_CODES)]
    Generate {
        /// How many workers.
        #[arg(long, default_value_t = 1000)]
        workers: usize,
        /// The same seed makes the same export.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// CSV, or Workday RaaS JSON.
        #[arg(long = "export-format", value_enum, default_value = "csv")]
        export_format: ExportFormat,
        /// The file to write; default standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Approve {
    /// A snapshot the directory failsafe held.
    #[command(after_help = EXIT_CODES)]
    Snapshot {
        /// The snapshot's id, as the held run names it.
        id: i64,
        #[command(flatten)]
        conf: Conf,
    },
    /// A push the removal failsafe or a guardrail held.
    #[command(after_help = EXIT_CODES)]
    Push {
        /// The hold's id, as `rosterd holds` lists it.
        id: i64,
        #[command(flatten)]
        conf: Conf,
    },
}

#[derive(Subcommand)]
enum Review {
    /// Keep the entry: set its `reviewed` date, and its `expires` with `--until`.
    #[command(after_help = EXIT_CODES)]
    Keep {
        #[command(flatten)]
        decision: ReviewDecision,
        /// The entry's new last day (at most the group's `requests.max_days` away).
        #[arg(long, value_parser = parse_date)]
        until: Option<NaiveDate>,
    },
    /// Remove the entry.
    #[command(after_help = EXIT_CODES)]
    Remove {
        #[command(flatten)]
        decision: ReviewDecision,
    },
}

/// What both review decisions take.
#[derive(clap::Args)]
struct ReviewDecision {
    /// The group, by its name in the rules.
    group: String,
    /// The entry's worker, by key or email as the entry names them.
    worker: String,
    /// The reviewer's email, written into the commit's `Reviewed-by` trailer.
    #[arg(long)]
    by: String,
    /// Why, written into the commit message.
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    conf: Conf,
    #[command(flatten)]
    when: When,
    #[command(flatten)]
    out: Output,
}

#[derive(clap::Args)]
struct PushFlags {
    /// Only this group.
    #[arg(long)]
    group: Option<String>,
    /// Only this target.
    #[arg(long)]
    target: Option<String>,
    /// Print the write requests instead of sending them; nothing is recorded.
    #[arg(long)]
    dry_run: bool,
    /// Read every pushed group back from the target first and repair drift.
    #[arg(long)]
    reconcile: bool,
}

impl PushFlags {
    fn args(&self) -> cli::PushArgs {
        cli::PushArgs {
            group: self.group.clone(),
            target: self.target.clone(),
            dry_run: self.dry_run,
            reconcile: self.reconcile,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// A Workday RaaS report's JSON (`Report_Entry`).
    WorkdayJson,
}

impl Command {
    /// Its `--config`; `None` for the command that reads no config.
    fn conf(&self) -> Option<&Conf> {
        match self {
            Command::Run { conf, .. }
            | Command::Check { conf, .. }
            | Command::Test { conf, .. }
            | Command::Plan { conf, .. }
            | Command::Explain { conf, .. }
            | Command::Evaluate { conf, .. }
            | Command::Push { conf, .. }
            | Command::Sync { conf, .. }
            | Command::Status { conf, .. }
            | Command::Emulator { conf, .. }
            | Command::Members { conf, .. }
            | Command::History { conf, .. }
            | Command::Runs { conf, .. }
            | Command::Holds { conf, .. }
            | Command::Decisions { conf, .. }
            | Command::Reviews { conf, .. }
            | Command::Review {
                what:
                    Review::Keep {
                        decision: ReviewDecision { conf, .. },
                        ..
                    }
                    | Review::Remove {
                        decision: ReviewDecision { conf, .. },
                    },
            }
            | Command::Migrate { conf }
            | Command::Approve {
                what: Approve::Snapshot { conf, .. } | Approve::Push { conf, .. },
            } => Some(conf),
            Command::Generate { .. } => None,
        }
    }

    /// The command's name, its `--as-of` (`None`: it takes no date) and its `--format`
    /// (`None`: it has one output).
    fn flags(
        &self,
    ) -> (
        &'static str,
        Option<Option<NaiveDate>>,
        Option<Option<Format>>,
    ) {
        let out = |o: &Output| {
            Some(o.format.map(|f| match f {
                TextOrJson::Text => Format::Text,
                TextOrJson::Json => Format::Json,
            }))
        };
        match self {
            // Taken only to be refused with what to use instead (`cli::run`).
            Command::Run { as_of, .. } => ("run", Some(*as_of), None),
            Command::Check { when, out: o, .. } => ("check", Some(when.as_of), out(o)),
            Command::Test { when, out: o, .. } => ("test", Some(when.as_of), Some(o.format)),
            Command::Plan { when, out: o, .. } => ("plan", Some(when.as_of), out(o)),
            Command::Explain { when, out: o, .. } => ("explain", Some(when.as_of), out(o)),
            Command::Evaluate { when, out: o, .. } => ("evaluate", Some(when.as_of), out(o)),
            Command::Push { out: o, .. } => ("push", None, out(o)),
            Command::Sync { when, out: o, .. } => ("sync", Some(when.as_of), out(o)),
            Command::Status { out: o, .. } => ("status", None, out(o)),
            Command::Emulator { .. } => ("emulator", None, None),
            Command::Members { out: o, .. } => ("members", None, out(o)),
            Command::History { when, out: o, .. } => ("history", Some(when.as_of), out(o)),
            Command::Runs { out: o, .. } => ("runs", None, out(o)),
            Command::Holds { out: o, .. } => ("holds", None, out(o)),
            Command::Decisions { format, .. } => (
                "decisions",
                None,
                Some(format.map(|f| match f {
                    AuditFormat::Text => Format::Text,
                    AuditFormat::Json => Format::Json,
                    AuditFormat::Csv => Format::Csv,
                })),
            ),
            Command::Reviews { when, out: o, .. } => ("reviews", Some(when.as_of), out(o)),
            Command::Review {
                what: Review::Keep { decision: d, .. } | Review::Remove { decision: d },
            } => ("review", Some(d.when.as_of), out(&d.out)),
            Command::Approve { .. } => ("approve", None, None),
            Command::Migrate { .. } => ("migrate", None, None),
            Command::Generate { .. } => ("generate", None, None),
        }
    }
}

/// The config file, the evaluation date and the output format a command runs with: its
/// own options, else those given before it; an error for one it does not take.
fn date_and_format(args: &Args) -> Result<(PathBuf, Option<NaiveDate>, Format), String> {
    let (name, date, format) = args.command.flags();
    let conf = args.command.conf();
    if args.config.is_some() && conf.is_none() {
        return Err(format!(
            "`--config` does not apply to `rosterd {name}`: it reads no config"
        ));
    }
    let config = conf
        .and_then(|c| c.config.clone())
        .or_else(|| args.config.clone())
        .unwrap_or_else(|| PathBuf::from(rosterd::config::DEFAULT_PATH));
    if args.as_of.is_some() && date.is_none() {
        return Err(format!(
            "`--as-of` does not apply to `rosterd {name}`: it takes no date"
        ));
    }
    if args.format.is_some() && format.is_none() {
        return Err(format!(
            "`--format` does not apply to `rosterd {name}`: it has one output"
        ));
    }
    let format = format.flatten().or(args.format).unwrap_or(Format::Text);
    if format == Format::Junit && name != "test" {
        return Err("`--format junit` is for `rosterd test` only".into());
    }
    if format == Format::Csv && name != "decisions" {
        return Err("`--format csv` is for `rosterd decisions` only".into());
    }
    Ok((config, date.flatten().or(args.as_of), format))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: expected YYYY-MM-DD"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The daemon tells what it does; a one-shot command's findings are in its output, and
    // its log lines only behind -v.
    let (level, json) = match &args.command {
        Command::Run { json_logs, .. } => ("info", *json_logs),
        _ => (
            match args.verbose {
                0 => "off",
                1 => "warn",
                2 => "info",
                _ => "debug",
            },
            false,
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    let (config, as_of, format) = match date_and_format(&args) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("error: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    let global = Global {
        config,
        as_of,
        format,
    };
    dispatch(&args.command, &global).unwrap_or_else(|e: CliError| {
        eprintln!("{}", e.render());
        e.exit_code()
    })
}

/// Runs the command: its exit status.
fn dispatch(command: &Command, global: &Global) -> Result<ExitCode, CliError> {
    match command {
        Command::Run { .. } => cli::run(global).map(|()| ExitCode::SUCCESS),
        Command::Test { .. } => cli::test(global).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Check { .. } => cli::check(global).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Plan { group, .. } => {
            cli::plan(global, group.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Explain { worker, group, .. } => {
            cli::explain(global, worker, group.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Evaluate { .. } => cli::evaluate(global).map(ExitCode::from),
        Command::Push { push, .. } => cli::push(global, &push.args()).map(ExitCode::from),
        Command::Sync { push, .. } => cli::sync(global, &push.args()).map(ExitCode::from),
        Command::Status { .. } => cli::status(global).map(ExitCode::from),
        Command::Emulator {
            listen,
            users_from_config,
            token_env,
            ..
        } => cli::emulator(global, *listen, *users_from_config, token_env.as_deref())
            .map(|()| ExitCode::SUCCESS),
        Command::Approve {
            what: Approve::Push { id, .. },
        } => cli::approve_push(global, *id).map(|()| ExitCode::SUCCESS),
        Command::Holds { id, .. } => cli::holds(global, *id).map(|()| ExitCode::SUCCESS),
        Command::Members { group, .. } => cli::members(global, group).map(|()| ExitCode::SUCCESS),
        Command::History {
            group, worker, at, ..
        } => cli::history(global, group, worker.as_deref(), *at).map(|()| ExitCode::SUCCESS),
        Command::Runs { limit, .. } => cli::runs(global, *limit).map(|()| ExitCode::SUCCESS),
        Command::Approve {
            what: Approve::Snapshot { id, .. },
        } => cli::approve_snapshot(global, *id).map(|()| ExitCode::SUCCESS),
        Command::Decisions {
            group, from, to, ..
        } => cli::decisions(global, group.as_deref(), *from, *to).map(|()| ExitCode::SUCCESS),
        Command::Reviews {
            within,
            approver,
            notify,
            ..
        } => {
            cli::reviews(global, *within, approver.as_deref(), *notify).map(|()| ExitCode::SUCCESS)
        }
        Command::Review { what } => {
            let (keep, d, until) = match what {
                Review::Keep { decision, until } => (true, decision, *until),
                Review::Remove { decision } => (false, decision, None),
            };
            cli::review(
                global,
                &cli::ReviewArgs {
                    keep,
                    group: d.group.clone(),
                    worker: d.worker.clone(),
                    by: d.by.clone(),
                    comment: d.comment.clone(),
                    until,
                },
            )
            .map(|()| ExitCode::SUCCESS)
        }
        Command::Migrate { .. } => cli::migrate(global).map(|()| ExitCode::SUCCESS),
        Command::Generate {
            workers,
            seed,
            export_format,
            output,
        } => {
            let format = match export_format {
                ExportFormat::Csv => SourceFormat::Csv,
                ExportFormat::WorkdayJson => SourceFormat::WorkdayJson,
            };
            cli::generate(*workers, *seed, format, output.as_deref()).map(|()| ExitCode::SUCCESS)
        }
    }
}
