//! Helpers shared by the integration tests: the small fixture organisation and rule sets
//! built from YAML text.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use rosterd::config::Config;
use rosterd::directory::{self, AttrType, Attribute, Schema, Snapshot};
use rosterd::rules::{self, RuleSet, RulesError, SourceMap};

pub mod daemon;
pub mod hooks;
pub mod hr;
pub mod ldap_server;
pub mod scenarios;
pub mod world;

pub const ORG_CONFIG: &str = "tests/fixtures/org/rosterd.yaml";

/// `--as-of DATE` when the command in `args` evaluates and so takes a date (given to one
/// that does not, it is refused); nothing otherwise.
pub fn as_of_for<S: AsRef<str>>(args: &[S], date: &str) -> Vec<String> {
    let mut words = args.iter().map(AsRef::as_ref);
    let command = loop {
        match words.next() {
            Some("--format" | "--config") => {
                words.next();
            }
            Some(w) if w.starts_with('-') => {}
            other => break other,
        }
    };
    let dated = [
        "check", "test", "plan", "explain", "evaluate", "sync", "history", "reviews", "review",
    ];
    match command {
        Some(c) if dated.contains(&c) => vec!["--as-of".into(), date.into()],
        _ => Vec::new(),
    }
}

/// `git ARGS` in `dir` (with an author, for commits): its output; a failure fails the test.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=CI"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// git-daemon: where scripts/test found it, else in git's exec path. `None` (with a note)
/// when there is none, except in CI, where the scenarios must run.
pub fn git_daemon() -> Option<PathBuf> {
    let found = std::env::var_os("ROSTERD_TEST_GIT_DAEMON")
        .map(PathBuf::from)
        .or_else(|| {
            let exec = git(Path::new("."), &["--exec-path"]);
            Some(Path::new(&exec).join("git-daemon"))
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but git-daemon cannot be found: run the suite with scripts/test"
        );
        eprintln!("no git-daemon: skipping this scenario");
    }
    found
}

/// git-daemon `bin` serving the repositories under `base` on 127.0.0.1:`port`, pushes
/// allowed; its output is the caller's to direct. git-daemon itself, not `git daemon`:
/// killing the `git` wrapper would leave the daemon running and holding the test's output
/// open.
pub fn git_daemon_command(bin: &Path, base: &Path, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(bin);
    command
        .args([
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
        ])
        .arg(base);
    command
}

/// The fixture organisation's rules, as text.
pub fn org_rules() -> String {
    std::fs::read_to_string("tests/fixtures/org/rules/groups.yaml").unwrap()
}

/// A fresh SQLite database and, where configured, a fresh PostgreSQL one.
pub async fn all_dbs() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db()];
    dbs.extend(postgres_db().await);
    dbs
}

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

/// A fresh database for one test: a SQLite file in a temporary folder, or a new PostgreSQL
/// database on the server that `ROSTERD_TEST_POSTGRES_URL` names.
pub struct TestDb {
    pub url: String,
    /// Keeps the SQLite file's folder alive.
    _dir: Option<tempfile::TempDir>,
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rosterd.db").display());
    TestDb {
        url,
        _dir: Some(dir),
    }
}

/// `None` (with a note) when no PostgreSQL is configured, except in CI, where the suite must
/// run on both backends and a missing server fails the test.
pub async fn postgres_db() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("ROSTERD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ROSTERD_TEST_POSTGRES_URL is not set: run the suite with scripts/test"
        );
        eprintln!(
            "ROSTERD_TEST_POSTGRES_URL is not set: skipping the PostgreSQL half of this test"
        );
        return None;
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "rosterd_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = admin_url.rsplit_once('/').unwrap().0;
    Some(TestDb {
        url: format!("{base}/{name}"),
        _dir: None,
    })
}

/// A rosterd installation in a temporary folder: config, export and rules that a test can
/// change between runs.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

impl Install {
    /// The fixture organisation and `rules` (file name → YAML), on database `db`.
    pub fn new(db: TestDb, rules: &[(&str, &str)]) -> Install {
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(ORG_CONFIG).unwrap();
        std::fs::write(
            dir.path().join("rosterd.yaml"),
            format!("database: {}\n{config}", db.url),
        )
        .unwrap();
        std::fs::copy(
            "tests/fixtures/org/workers.csv",
            dir.path().join("workers.csv"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let install = Install { dir, db };
        for (name, yaml) in rules {
            install.write_rule(name, yaml);
        }
        install
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_rule(&self, name: &str, yaml: &str) {
        std::fs::write(self.path("rules").join(name), yaml).unwrap();
    }

    /// Rewrites the export, line by line.
    pub fn edit_export(&self, edit: impl Fn(&str) -> Option<String>) {
        let path = self.path("workers.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text.lines().filter_map(edit).collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    pub fn config(&self) -> Config {
        Config::load(&self.path("rosterd.yaml")).unwrap()
    }

    pub fn rules(&self, config: &Config) -> RuleSet {
        let schema = directory::Schema::from_config(&config.directory);
        rules::load(
            &config.rules.dir,
            &rules::Context::from_config(config, &schema),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One evaluate cycle as of `date`.
    pub async fn run(&self, store: &rosterd::store::Store, date: &str) -> rosterd::cycle::Outcome {
        let config = self.config();
        let rules = self.rules(&config);
        let inputs = rosterd::cycle::Inputs {
            config: std::sync::Arc::new(config.clone()),
            rules: std::sync::Arc::new(rules.clone()),
            as_of: NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
            now: rosterd::clock::now_utc(),
            kind: "evaluate",
        };
        rosterd::cycle::run(&inputs, store)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn store(&self) -> rosterd::store::Store {
        rosterd::store::Store::open(&self.db.url).await.unwrap()
    }
}

/// Runs an async test body on SQLite and, where configured, on PostgreSQL: one suite, two
/// backends, so their SQL cannot drift apart.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::sqlite_db()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(db) = $crate::common::postgres_db().await {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}
