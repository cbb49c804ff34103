//! Helpers shared by the integration tests: the small fixture organisation and rule sets
//! built from YAML text.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use rosterd::config::Config;
use rosterd::directory::{self, AttrType, Attribute, Schema, Snapshot};
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
    rules::Context::from_config(config, snapshot.schema())
}

/// A schema of `(name, type)` attributes whose columns have the attributes' names.
pub fn schema_of(attrs: &[(&str, AttrType)], key: &str, email: &str, manager: &str) -> Arc<Schema> {
    let attrs = attrs
        .iter()
        .map(|(name, ty)| Attribute {
            name: (*name).into(),
            ty: *ty,
            column: (*name).into(),
            separator: ";".into(),
            date_format: None,
        })
        .collect();
    Arc::new(Schema::new(attrs, key, email, Some(manager)).unwrap())
}

/// The schema of the semantics and differential tests: one attribute of every type.
pub fn letters_schema() -> Arc<Schema> {
    use AttrType::*;
    let attrs = [
        ("id", String),
        ("email", String),
        ("mgr", String),
        ("s", String),
        ("t", String),
        ("n", Number),
        ("b", Bool),
        ("d", Date),
        ("l", List),
        ("status", String),
    ];
    schema_of(&attrs, "id", "email", "mgr")
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
