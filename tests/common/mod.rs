//! Helpers shared by the integration tests: the small fixture organisation and rule sets
//! built from YAML text.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::Path;

use chrono::NaiveDate;
use rosterd::config::Config;
use rosterd::directory::{self, Snapshot};
use rosterd::rules::{self, RuleSet, RulesError, SourceMap};

pub const ORG_CONFIG: &str = "tests/fixtures/org/rosterd.yaml";

pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

/// The fixture organisation: ten workers, one terminated.
pub fn org() -> (Config, Snapshot) {
    let config = Config::load(Path::new(ORG_CONFIG)).unwrap();
    let (snapshot, report) = directory::load(&config.directory).unwrap();
    assert!(report.issues.is_empty(), "{report}");
    (config, snapshot)
}

pub fn context<'a>(config: &'a Config, snapshot: &'a Snapshot) -> rules::Context<'a> {
    rules::Context {
        schema: snapshot.schema(),
        targets: config.targets.keys().cloned().collect(),
        eligibility: config
            .directory
            .eligibility
            .as_deref()
            .map(|e| (e, config.path.as_path())),
    }
}

/// Checks one rule file given as text, shown as `name` in diagnostics.
pub fn rules_from(
    name: &str,
    yaml: &str,
    config: &Config,
    snapshot: &Snapshot,
) -> Result<RuleSet, (SourceMap, rules::Diagnostics)> {
    let mut sources = SourceMap::default();
    sources.add(name, Path::new(name), yaml.to_string());
    match rules::check_sources(sources, &context(config, snapshot)) {
        Ok(r) => Ok(r),
        Err(RulesError::Invalid {
            sources,
            diagnostics,
        }) => Err((*sources, diagnostics)),
        Err(e) => panic!("{e}"),
    }
}
