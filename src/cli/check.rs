//! `rosterd check`: is the config, the export and every rule file valid? Prints all errors and
//! warnings at once, like a compiler.

use std::fmt::Write as _;

use super::{load_config, print, print_json, CliError, Format, Global};
use crate::directory;
use crate::engine;
use crate::rules::{self, Diagnostics, RulesError};

pub fn check(global: &Global) -> Result<bool, CliError> {
    let config = load_config(&global.config)?;
    let as_of = global.as_of();
    // The rules are checked against the schema even when the export cannot be read, so that a
    // merge request sees its rule errors whatever the state of the HR data.
    let schema = directory::Schema::from_config(&config.directory);
    let loaded = super::block_on(async { Ok(crate::fetch::load(&config.directory).await) })?;
    let ctx = rules::Context::from_config(&config, &schema);
    let (sources, mut diagnostics, rule_set) = match rules::load(&config.rules.dir, &ctx) {
        Ok(rule_set) => (
            rule_set.sources().clone(),
            Diagnostics::default(),
            Some(rule_set),
        ),
        Err(RulesError::Invalid {
            sources,
            diagnostics,
        }) => (*sources, diagnostics, None),
        Err(e @ (RulesError::Read { .. } | RulesError::Internal(_))) => {
            return Err(CliError::Invalid(e.to_string()))
        }
    };
    if let (Some(rule_set), Ok((snapshot, _))) = (&rule_set, &loaded) {
        let evaluation = engine::evaluate(snapshot, rule_set, as_of);
        diagnostics.extend(engine::lint(snapshot, rule_set, &evaluation));
        for v in engine::guardrails::check(snapshot, rule_set, &evaluation) {
            diagnostics.push(v.diagnostic());
        }
    }
    // An export that cannot be had here (a rules repository's CI holds no HR credentials) is
    // said, and the rules stand checked against the schema; one that is wrong is an error.
    let unread = loaded
        .as_ref()
        .err()
        .filter(|e| e.unobtainable())
        .map(ToString::to_string);
    let data_error = loaded
        .as_ref()
        .err()
        .filter(|e| !e.unobtainable())
        .map(ToString::to_string);
    // The console's roles name rosterd groups the rules must define.
    let config_error = match (&config.ui, &rule_set) {
        (Some(ui), Some(rules)) => ui
            .check_groups(&config.path, &config.rules.dir, |g| {
                rules.lookup(g).is_some()
            })
            .err(),
        _ => None,
    };
    let ok = !diagnostics.has_errors() && data_error.is_none() && config_error.is_none();
    if global.format == Format::Json {
        let report = loaded.as_ref().ok().map(|(_, r)| r);
        print_json(&serde_json::json!({
            "ok": ok,
            "as_of": as_of.to_string(),
            "errors": diagnostics.errors() + usize::from(data_error.is_some()) + usize::from(config_error.is_some()),
            "warnings": diagnostics.warnings(),
            // The first 200 by position; `errors` and `warnings` count them all.
            "diagnostics": diagnostics.shown().iter().map(|d| d.to_json(&sources)).collect::<Vec<_>>(),
            "diagnostics_not_shown": diagnostics.iter().count().saturating_sub(crate::rules::diagnostic::SHOWN),
            "directory": report,
            "directory_error": data_error,
            "directory_not_read": unread,
            "config_error": config_error,
        }))?;
        return Ok(ok);
    }
    let mut out = String::new();
    match &loaded {
        Ok((_, report)) => {
            let _ = write!(out, "{report}");
        }
        Err(e) if e.unobtainable() => {
            let _ = writeln!(
                out,
                "note: the HR export was not read, so the rules were checked against the schema only: {e}"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
        }
    }
    if let Some(e) = &config_error {
        let _ = writeln!(out, "error: {e}");
    }
    out.push('\n');
    out.push_str(&diagnostics.render_counting(
        &sources,
        usize::from(data_error.is_some()) + usize::from(config_error.is_some()),
    ));
    if let Some(rule_set) = &rule_set {
        let _ = writeln!(
            out,
            "{}, {}, {} in {}",
            crate::text::count(rule_set.groups().len() as u64, "group"),
            crate::text::count(rule_set.guardrails().len() as u64, "guardrail"),
            crate::text::count(rule_set.tests().len() as u64, "rule test"),
            crate::text::count(
                sources
                    .files()
                    .iter()
                    .filter(|f| f.path.starts_with(&config.rules.dir))
                    .count() as u64,
                "rule file"
            )
        );
    }
    print(&out)?;
    Ok(ok)
}
