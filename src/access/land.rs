//! A decision about access (a granted request, a review's keep or remove) written as a
//! commit to the rules repository: on a branch for review, or on the main branch when
//! `requests.direct_commit` is set. The edited rules must pass `rosterd check` and
//! `rosterd test` before anything is committed; a decision that would break them is
//! refused, and nothing is pushed.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::git::{GitError, Repo};
use crate::config::Config;
use crate::directory::Schema;
use crate::rules::edit::{self, EditError, Grant};
use crate::rules::{self, GroupKind, RuleSet, Who};
use crate::store::{AccessDecision, DecisionRecord};

/// What was decided, by whom.
#[derive(Debug, Clone)]
pub enum Decision {
    /// An approved request: `grant` joins the group's `include` or `members`.
    Grant {
        group: String,
        grant: Grant,
        requested_by: String,
        approved_by: String,
        /// The request's id or URL, for the commit's trailer.
        request: String,
    },
    /// A review kept the entry: `reviewed` becomes the day, and `expires` moves to `until`
    /// when given.
    Keep {
        group: String,
        who: Who,
        until: Option<NaiveDate>,
        by: String,
        comment: String,
    },
    /// A review removed the entry.
    Remove {
        group: String,
        who: Who,
        by: String,
        comment: String,
    },
}

impl Decision {
    /// A review's decision about the entry naming `who` (a key or an email, as written):
    /// keep it (until `until`, when given) or remove it.
    pub fn review(
        keep: bool,
        group: String,
        who: String,
        until: Option<NaiveDate>,
        by: String,
        comment: String,
    ) -> Decision {
        let who = Who::KeyOrEmail(who);
        match keep {
            true => Decision::Keep {
                group,
                who,
                until,
                by,
                comment,
            },
            false => Decision::Remove {
                group,
                who,
                by,
                comment,
            },
        }
    }

    /// What the audit records of the decision, landed as `landed` (its `id` is the store's
    /// to give). A grant's record has no comment: the approver's is the caller's.
    pub fn record(&self, landed: &Landed) -> DecisionRecord {
        let (decision, by, comment, request) = match self {
            Decision::Grant {
                approved_by,
                request,
                ..
            } => (
                AccessDecision::Grant,
                approved_by,
                "",
                Some(request.clone()),
            ),
            Decision::Keep { by, comment, .. } => {
                (AccessDecision::Keep, by, comment.as_str(), None)
            }
            Decision::Remove { by, comment, .. } => {
                (AccessDecision::Remove, by, comment.as_str(), None)
            }
        };
        DecisionRecord {
            id: 0,
            decided_at: crate::clock::stamp(crate::clock::now_utc()),
            decision,
            group: self.group().to_string(),
            list: landed.list.clone(),
            worker: self.who().value().to_string(),
            decided_by: by.clone(),
            comment: comment.to_string(),
            until: landed.expires.map(|d| d.to_string()),
            request,
            branch: Some(landed.branch.clone()),
            commit: Some(landed.commit.clone()),
            direct_commit: landed.direct,
            link: landed.link.clone(),
        }
    }

    pub fn group(&self) -> &str {
        match self {
            Decision::Grant { group, .. }
            | Decision::Keep { group, .. }
            | Decision::Remove { group, .. } => group,
        }
    }

    fn who(&self) -> &Who {
        match self {
            Decision::Grant { grant, .. } => &grant.who,
            Decision::Keep { who, .. } | Decision::Remove { who, .. } => who,
        }
    }

    /// `grant`, `keep` or `remove`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Grant { .. } => "grant",
            Decision::Keep { .. } => "keep",
            Decision::Remove { .. } => "remove",
        }
    }

    /// The commit message: a subject, the comment, and trailers naming the people.
    fn message(&self, list: &str) -> String {
        let group = self.group();
        let who = self.who();
        let mut m = match self {
            Decision::Grant { grant, .. } => match grant.expires {
                Some(e) => format!("{group}: add {who} to {list} until {e}\n"),
                None => format!("{group}: add {who} to {list}\n"),
            },
            Decision::Keep { until: Some(u), .. } => {
                format!("{group}: keep {who} in {list} until {u} (access review)\n")
            }
            Decision::Keep { until: None, .. } => {
                format!("{group}: keep {who} in {list} (access review)\n")
            }
            Decision::Remove { .. } => {
                format!("{group}: remove {who} from {list} (access review)\n")
            }
        };
        match self {
            Decision::Grant {
                grant,
                requested_by,
                approved_by,
                request,
                ..
            } => {
                if let Some(r) = &grant.reason {
                    let _ = write!(m, "\n{r}\n");
                }
                let _ = write!(
                    m,
                    "\nRequested-by: {requested_by}\nApproved-by: {approved_by}\nRequest: {request}\n"
                );
            }
            Decision::Keep { by, comment, .. } | Decision::Remove { by, comment, .. } => {
                if !comment.trim().is_empty() {
                    let _ = write!(m, "\n{}\n", comment.trim());
                }
                let _ = write!(m, "\nReviewed-by: {by}\nDecision: {}\n", self.kind());
            }
        }
        m
    }
}

/// Where a decision landed.
#[derive(Debug, Clone, Serialize)]
pub struct Landed {
    /// The branch pushed: a new one for review, or the main branch itself.
    pub branch: String,
    /// Whether it was committed straight to the main branch.
    pub direct: bool,
    pub commit: String,
    /// The commit it was made on.
    pub base: String,
    /// The rule file changed, inside the repository.
    pub file: String,
    /// `include` or `members`.
    pub list: String,
    /// The entry's last day after the decision (`None`: no end date, or removed).
    pub expires: Option<NaiveDate>,
    /// The change on the repository's web pages, when `repository.web_url` is set.
    pub link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LandError {
    #[error("access requests are off: add a `requests:` section with the rules repository to the config")]
    Off,
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the rules on `{branch}` do not load, so rosterd will not add to them:\n{message}")]
    BaseInvalid { branch: String, message: String },
    #[error("no group `{0}` in the rules on the repository's branch")]
    NoGroup(String),
    #[error(
        "group `{0}` is managed: its members are its rule alone, nobody is added or kept by hand"
    )]
    Managed(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("the change would break the rules, so rosterd did not commit it:\n{0}")]
    Check(String),
    #[error("the change would fail the rule tests, so rosterd did not commit it: {0}")]
    Tests(String),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the branch moved on while rosterd committed, three times in a row; try again")]
    Busy,
}

/// Commits `decision` to the rules repository and pushes it; `today` is the decision's
/// date (the `reviewed` date, and the day `max_days` counts from).
pub fn land(config: &Config, decision: &Decision, today: NaiveDate) -> Result<Landed, LandError> {
    let requests = config.requests.as_ref().ok_or(LandError::Off)?;
    let repo = Repo::new(requests)?;
    let _clone = crate::locks::lock(&super::git::CLONE);
    let branch = if requests.direct_commit {
        repo.branch().to_string()
    } else {
        branch_name(decision, today)
    };
    // A direct commit races whoever else pushes to the branch: start again from theirs.
    for _ in 0..3 {
        let made = commit_on(config, &repo, &branch, decision, today)?;
        let title = requests.repository.gitlab && !requests.direct_commit;
        let subject = decision
            .message(&made.list)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        match repo.push(&branch, title.then_some(subject.as_str())) {
            Ok(()) => {
                return Ok(Landed {
                    link: link(
                        config,
                        &branch,
                        &made.base,
                        &made.commit,
                        requests.direct_commit,
                    ),
                    direct: requests.direct_commit,
                    branch,
                    ..made
                })
            }
            Err(e) if requests.direct_commit && e.is_rejected_push() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LandError::Busy)
}

/// Makes the commit on a fresh `branch` from the remote's main branch (the `Landed` it
/// returns is yet to be pushed, its link and branch unset).
fn commit_on(
    config: &Config,
    repo: &Repo,
    branch: &str,
    decision: &Decision,
    today: NaiveDate,
) -> Result<Landed, LandError> {
    let requests = config.requests.as_ref().ok_or(LandError::Off)?;
    let base = repo.start(branch)?;
    let dir = repo.dir().join(&requests.repository.path);
    let schema = Arc::new(Schema::from_config(&config.directory));
    let ctx = rules::Context::from_config(config, &schema);
    let before = rules::load(&dir, &ctx).map_err(|e| LandError::BaseInvalid {
        branch: repo.branch().to_string(),
        message: e.to_string(),
    })?;
    let id = before
        .lookup(decision.group())
        .ok_or_else(|| LandError::NoGroup(decision.group().to_string()))?;
    let group = before.group(id);
    if group.kind == GroupKind::Managed {
        return Err(LandError::Managed(group.name.clone()));
    }
    let (list, _) = group.granted();
    let path = before.sources().file(group.span.file).path.clone();
    let text = std::fs::read_to_string(&path).map_err(|source| LandError::Io {
        path: path.clone(),
        source,
    })?;
    let edited = edited(&text, group, list, decision, today)?;
    std::fs::write(&path, &edited).map_err(|source| LandError::Io {
        path: path.clone(),
        source,
    })?;
    let after = rules::load(&dir, &ctx).map_err(|e| LandError::Check(e.to_string()))?;
    let expires = verify(&after, decision, today)?;
    let tests = crate::engine::rule_tests::run(&after, &schema, today);
    let failed: Vec<String> = tests
        .iter()
        .filter(|t| !t.passed())
        .map(|t| format!("`{}` ({})", t.name, t.location))
        .collect();
    if !failed.is_empty() {
        return Err(LandError::Tests(failed.join(", ")));
    }
    let relative = path.strip_prefix(repo.dir()).unwrap_or(&path).to_path_buf();
    let commit = repo.commit(&relative, &decision.message(list))?;
    Ok(Landed {
        branch: String::new(),
        direct: false,
        commit,
        base,
        file: relative.display().to_string(),
        list: list.to_string(),
        expires,
        link: None,
    })
}

/// The file's text with the decision applied, within the group's limits.
fn edited(
    text: &str,
    group: &rules::Group,
    list: &str,
    decision: &Decision,
    today: NaiveDate,
) -> Result<String, LandError> {
    let max_days = group.requests.as_ref().map(|r| r.max_days);
    let latest = max_days.map(|d| today + Days::new(u64::from(d)));
    let too_long = |until: Option<NaiveDate>| match (until, latest, max_days) {
        (Some(u), Some(l), Some(d)) if u > l => Some(LandError::Refused(format!(
            "group `{}` grants at most {d} days: until {l}, not {u}",
            group.name
        ))),
        (None, Some(_), Some(d)) => Some(LandError::Refused(format!(
            "group `{}` grants at most {d} days: give an end date",
            group.name
        ))),
        _ => None,
    };
    match decision {
        Decision::Grant { grant, .. } => {
            if let Some(e) = too_long(grant.expires) {
                return Err(e);
            }
            let needs_reason = group
                .requests
                .as_ref()
                .is_some_and(|r| r.justification_required);
            if needs_reason && grant.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(LandError::Refused(format!(
                    "group `{}` requires a justification",
                    group.name
                )));
            }
            Ok(edit::add_entry(text, &group.name, list, grant)?)
        }
        Decision::Keep { who, until, .. } => {
            if let Some(e) = until.and_then(|u| too_long(Some(u))) {
                return Err(e);
            }
            Ok(edit::keep_entry(
                text,
                &group.name,
                list,
                who,
                *until,
                today,
            )?)
        }
        Decision::Remove { who, .. } => Ok(edit::remove_entry(text, &group.name, list, who)?),
    }
}

/// The edited rules say what the decision meant: the entry is there with its dates, or gone.
/// The entry's end date after it.
fn verify(
    after: &RuleSet,
    decision: &Decision,
    today: NaiveDate,
) -> Result<Option<NaiveDate>, LandError> {
    let group = after
        .lookup(decision.group())
        .map(|id| after.group(id))
        .ok_or_else(|| LandError::Check(format!("group `{}` is gone", decision.group())))?;
    let (_, entries) = group.granted();
    let entry = entries.iter().find(|e| same_worker(&e.who, decision.who()));
    let holds = match (decision, entry) {
        (Decision::Grant { grant, .. }, Some(e)) => e.expires == grant.expires,
        (Decision::Keep { until, .. }, Some(e)) => {
            e.reviewed == Some(today) && until.is_none_or(|u| e.expires == Some(u))
        }
        (Decision::Remove { .. }, None) => true,
        _ => false,
    };
    if holds {
        Ok(entry.and_then(|e| e.expires))
    } else {
        Err(LandError::Check(format!(
            "after the edit, group `{}` does not show the {} of {}",
            group.name,
            decision.kind(),
            decision.who()
        )))
    }
}

fn same_worker(a: &Who, b: &Who) -> bool {
    a.value().eq_ignore_ascii_case(b.value())
}

/// `rosterd/KIND-GROUP-WORKER-DATE-HASH`: readable, and new for every decision.
fn branch_name(decision: &Decision, today: NaiveDate) -> String {
    let who = decision.who().value();
    let clean: String = format!("{}-{}-{who}", decision.kind(), decision.group())
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.replace("..", "-");
    let nonce = {
        use sha2::Digest as _;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let digest = sha2::Sha256::digest(format!("{clean}{now}{}", std::process::id()));
        digest
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    format!("rosterd/{clean}-{}-{nonce}", today.format("%Y%m%d"))
}

/// The change on the repository's web pages: GitLab's merge requests for the branch, a
/// GitHub-style compare page, or the commit itself when it went to the main branch.
fn link(config: &Config, branch: &str, base: &str, commit: &str, direct: bool) -> Option<String> {
    let repo = &config.requests.as_ref()?.repository;
    let web = repo.web_url.as_deref()?.trim_end_matches('/');
    Some(match (direct, repo.gitlab) {
        (true, true) => format!("{web}/-/commit/{commit}"),
        (true, false) => format!("{web}/commit/{commit}"),
        (false, true) => {
            format!("{web}/-/merge_requests?scope=all&state=opened&source_branch={branch}")
        }
        (false, false) => format!("{web}/compare/{base}...{branch}?expand=1"),
    })
}
