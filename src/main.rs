use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use rosterd::cli::{self, CliError, Format, Global};
use rosterd::config::SourceFormat;

/// rosterd: group memberships from the HR export and rules kept in git.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The daemon config file.
    #[arg(long, global = true, default_value = rosterd::config::DEFAULT_PATH)]
    config: PathBuf,
    /// Evaluate as of this date (YYYY-MM-DD) instead of today (UTC).
    #[arg(long, global = true, value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the config, the HR export and every rule file; print all errors and warnings.
    Check,
    /// Show what the rules make of the export: members per group, or one group's members.
    Plan {
        /// List this group's members.
        #[arg(long)]
        group: Option<String>,
    },
    /// Explain why a worker is (or is not) in a group: every sub-expression's value.
    Explain {
        /// The worker, by key or email.
        worker: String,
        /// The group; without it, every group the worker is in.
        group: Option<String>,
    },
    /// Write a synthetic HR export (deterministic for a seed).
    Generate {
        #[arg(long, default_value_t = 1000)]
        workers: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long = "export-format", value_enum, default_value = "csv")]
        export_format: ExportFormat,
        /// The file to write; default standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Csv,
    WorkdayJson,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: expected YYYY-MM-DD"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let global = Global {
        config: args.config,
        as_of: args.as_of,
        format: args.format,
    };
    let result = match &args.command {
        Command::Check => cli::check(&global).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Plan { group } => cli::plan(&global, group.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Explain { worker, group } => {
            cli::explain(&global, worker, group.as_deref()).map(|()| ExitCode::SUCCESS)
        }
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
    };
    result.unwrap_or_else(|e: CliError| {
        eprintln!("error: {e}");
        e.exit_code()
    })
}
