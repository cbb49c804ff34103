//! Which granted entries are due for an access review, and why: every entry of a hybrid
//! group's `include` and a manual group's `members` is reviewed by the group's approvers
//! every `review_every` days (from its `reviewed` date; at once when it has none), and
//! again 14 days before it expires.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::rules::{Approver, GroupKind, PersonEntry, RuleSet, REVIEW_BEFORE_EXPIRY_DAYS};

/// One entry due for review.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub group: String,
    /// `include` or `members`.
    pub list: &'static str,
    /// The entry as written: `email: ...`, `id: ...` or the bare value.
    pub who: String,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub expires: Option<NaiveDate>,
    pub reviewed: Option<NaiveDate>,
    /// The day the review falls due (on or before the evaluation date: overdue or due).
    pub due_on: NaiveDate,
    pub why: Why,
    pub approvers: Vec<Approver>,
    /// `file:line:column` of the entry.
    pub location: String,
    #[serde(skip)]
    pub entry: PersonEntry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Why {
    /// No `reviewed` date: nobody has kept it since it was written.
    NeverReviewed,
    /// `review_every` days have passed (or will) since it was last kept.
    Periodic { last: NaiveDate, every_days: u32 },
    /// It expires within 14 days.
    Expiring { on: NaiveDate },
    /// It has expired: it grants nothing, and the review removes it.
    Expired { on: NaiveDate },
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::NeverReviewed => f.write_str("never reviewed"),
            Why::Periodic { last, every_days } => {
                write!(f, "last reviewed {last}, reviewed every {every_days} days")
            }
            Why::Expiring { on } => write!(f, "expires {on}"),
            Why::Expired { on } => write!(f, "expired {on}"),
        }
    }
}

/// The entries due for review on `as_of` or within `within_days` after it, earliest first.
pub fn due(rules: &RuleSet, as_of: NaiveDate, within_days: u32) -> Vec<Due> {
    let horizon = as_of + Days::new(u64::from(within_days));
    let mut out = Vec::new();
    for group in rules.groups() {
        if group.kind == GroupKind::Managed {
            continue;
        }
        let (list, entries) = group.granted();
        for entry in entries {
            let (due_on, why) = when_due(entry, group.review_every_days(), as_of);
            if due_on > horizon {
                continue;
            }
            out.push(Due {
                group: group.name.clone(),
                list,
                who: entry.who.to_string(),
                reason: entry.reason.clone(),
                ticket: entry.ticket.clone(),
                expires: entry.expires,
                reviewed: entry.reviewed,
                due_on,
                why,
                approvers: group.approvers(),
                location: rules.sources().location(entry.span),
                entry: entry.clone(),
            });
        }
    }
    out.sort_by(|a, b| (a.due_on, &a.group, &a.who).cmp(&(b.due_on, &b.group, &b.who)));
    out
}

/// When an entry falls due, and for which reason first.
pub fn when_due(entry: &PersonEntry, every_days: u32, as_of: NaiveDate) -> (NaiveDate, Why) {
    if let Some(on) = entry.expires.filter(|e| *e < as_of) {
        return (as_of, Why::Expired { on });
    }
    let periodic = match entry.reviewed {
        None => (as_of, Why::NeverReviewed),
        Some(last) => (
            last + Days::new(u64::from(every_days)),
            Why::Periodic { last, every_days },
        ),
    };
    let expiring = entry.expires.map(|on| {
        (
            on - Days::new(u64::from(REVIEW_BEFORE_EXPIRY_DAYS)),
            Why::Expiring { on },
        )
    });
    match expiring {
        Some(e) if e.0 < periodic.0 => e,
        _ => periodic,
    }
}

/// Whether a person is one of `approvers`: by their email, a group in their identity
/// provider's claim, or membership of a rosterd group (`member_of` answers by group name).
pub fn is_approver(
    approvers: &[Approver],
    email: &str,
    claims: &[String],
    member_of: impl Fn(&str) -> bool,
) -> bool {
    approvers.iter().any(|a| match a {
        Approver::Email(e) => e.eq_ignore_ascii_case(email),
        Approver::Claim(c) => claims.iter().any(|g| g == c),
        Approver::Group(g) => member_of(g),
    })
}
