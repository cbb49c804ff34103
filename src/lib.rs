//! rosterd keeps an organisation's groups right everywhere: it reads the HR system's worker
//! export, evaluates the group rules that CorpSec keeps in git, and pushes the resulting groups
//! and members to downstream apps (over SCIM 2.0, or into Okta's own groups and Google Groups), sending only
//! the difference.
//!
//! The modules follow the data, each owning one step:
//!
//! - [`names`], [`schedule`], [`backend`]: what the config names and checks (identifiers,
//!   attribute types, cron schedules, database URLs); they import nothing of rosterd's.
//! - [`config`]: the daemon's YAML config, parsed once into validated types.
//! - [`directory`]: HR export (CSV or Workday RaaS JSON) → typed [`directory::Snapshot`], with a
//!   load report that names the row and column of every bad value; plus the synthetic generator.
//! - [`rules`]: rule files → AST with source spans → checked [`rules::RuleSet`]; compiler-style
//!   diagnostics. No I/O beyond reading the rule files.
//! - [`revision`]: the rules folder's git commit.
//! - [`access`]: access requests and reviews as commits to the rules repository: which
//!   entries are due for review (`access::due`), a decision edited into the rule file, checked
//!   and tested, committed and pushed (`access::land`, over `access::git`, rosterd's own clone;
//!   with [`revision`] the only places rosterd runs `git`).
//! - [`engine`]: snapshot + rule set + evaluation date → memberships (columnar, on two
//!   threads; incrementally after small changes), and explanations of them. Pure: no async, no
//!   clock, no database (`tests/architecture.rs` pins that it imports no I/O layer).
//! - [`halves`]: work split in two, one half on another thread (rosterd is sized for two
//!   cores): the engine's groups of one rule level, and a run's whole-population steps.
//! - [`fetch`]: the export's text from a file or an HTTPS URL (auth, timeout, retries).
//! - [`http`]: what every HTTP client shares: bounded bodies, same-origin redirects, capped
//!   `Retry-After`; and `http::client`, the requests to a target of any kind (pacing,
//!   concurrency, auth, retries, counts; `TargetError`), under each kind's endpoints.
//! - [`secret`]: secrets that print as `***`.
//! - [`store`]: sqlx on SQLite or PostgreSQL: snapshots, runs, memberships and their audit;
//!   push state (target groups and members, users, outbox, holds, health, drift). The states
//!   it keeps as text are typed enums written once (`store::text`). It knows nothing of the
//!   engine, the push or the daemon (pinned by `tests/architecture.rs`).
//! - [`cycle`]: one run: refresh the snapshot (failsafe), evaluate, record in one transaction;
//!   its pure half (what changed, by worker and by key) is `cycle::diff`, the orchestration
//!   `cycle::run`, which hands loading, evaluating, comparing and `git` to blocking threads.
//! - [`scim`]: SCIM 2.0 wire types, the client (its endpoints over `http::client`), and an
//!   emulator of a target with faults and quirks, for tests and the quickstart; it serves
//!   the same tenants through Okta's management API too (`scim::emulator::okta`).
//! - [`okta`]: Okta's management API (groups, members, users, group rules) for a target of
//!   `kind: okta`, over `http::client`.
//! - [`google`]: Google Workspace's Directory API (groups with addresses, members in batch
//!   requests, users) for a target of `kind: google_workspace`, over `http::client`.
//! - [`ldap`]: LDAP directories and Active Directory (groups as entries, members as DNs,
//!   range retrieval, paged users) for a target of `kind: ldap`, over the `ldap3` crate with
//!   its own connection, pacing and retries, counted as the HTTP kinds are.
//! - [`push`]: per target and group: find or create, diff against what the target confirmed,
//!   failsafe, outbox, send, read back and verify, reconcile. It reaches a target only
//!   through `push::target`, the interface every kind answers (users, groups, member
//!   changes; pinned by `tests/architecture.rs`); `push::status` is the one
//!   model of each target's health that every surface reads, `push::summary` the one
//!   account of a run.
//! - [`daemon`]: `rosterd run`: schedules, rules reloads (what is in force is one value,
//!   swapped whole), leadership with a lease on PostgreSQL (`daemon::leader`), the admin API,
//!   the metrics, the web console (`daemon::ui`), graceful shutdown.
//! - [`notify`]: webhooks told of access decisions, reviews due and held pushes (signed JSON
//!   or Slack messages, retried, never failing what they report on).
//! - [`clock`]: the one place that reads the wall clock.
//! - [`text`]: text as messages quote it (cut short), and the macro for states kept as text.
//! - [`locks`]: locks taken whatever happened to an earlier holder.
//! - [`cli`]: the `rosterd` commands.

pub mod access;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod directory;
pub mod engine;
pub mod fetch;
pub mod google;
pub mod halves;
pub mod http;
pub mod ldap;
pub mod locks;
pub mod names;
pub mod notify;
pub mod okta;
pub mod push;
pub mod revision;
pub mod rules;
pub mod schedule;
pub mod scim;
pub mod secret;
pub mod store;
pub mod text;
