//! Access requests: which groups can be asked for, what a request must say, and how an
//! approved one is followed to the rules in force. The console stores requests
//! ([`crate::store::AccessRequest`]) and lands an approval with [`super::land`].

use chrono::{Days, NaiveDate};

use super::land::Decision;
use crate::rules::edit::Grant;
use crate::rules::{Group, GroupKind, RuleSet, Who};
use crate::store::AccessRequest;

/// Why a request cannot be made as asked; the message is shown to the person asking.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AskError {
    #[error("there is no group `{0}` in the rules in force")]
    NoGroup(String),
    #[error("group `{0}` takes no requests: its rules have no `requests:` block")]
    NotRequestable(String),
    #[error("group `{group}` grants at most {max} days; ask for 1 to {max}")]
    Days { group: String, max: u32 },
    #[error("group `{0}` needs a justification: say why the access is needed")]
    Justification(String),
    #[error("{0} is in group `{1}` already")]
    AlreadyIn(String, String),
}

/// The groups people may ask for, by name.
pub fn requestable(rules: &RuleSet) -> Vec<&Group> {
    let mut groups: Vec<&Group> = rules
        .groups()
        .iter()
        .filter(|g| g.requests.is_some() && g.kind != GroupKind::Managed)
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups
}

/// What an accepted request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// `include` or `members`.
    pub list: &'static str,
    /// The last day.
    pub until: NaiveDate,
}

/// Checks a request for `days` of `group` from `today`, with `justification`.
pub fn ask(
    rules: &RuleSet,
    group: &str,
    days: u32,
    justification: &str,
    today: NaiveDate,
) -> Result<Asked, AskError> {
    let g = rules
        .lookup(group)
        .map(|id| rules.group(id))
        .ok_or_else(|| AskError::NoGroup(group.to_string()))?;
    let Some(requests) = g.requests.as_ref().filter(|_| g.kind != GroupKind::Managed) else {
        return Err(AskError::NotRequestable(g.name.clone()));
    };
    if days == 0 || days > requests.max_days {
        return Err(AskError::Days {
            group: g.name.clone(),
            max: requests.max_days,
        });
    }
    if requests.justification_required && justification.trim().is_empty() {
        return Err(AskError::Justification(g.name.clone()));
    }
    Ok(Asked {
        list: g.granted().0,
        until: today + Days::new(u64::from(days)),
    })
}

/// The ticket an approved request's entry carries: the request's page on the console, or
/// `rosterd-request-ID` when the console's address is not known.
pub fn ticket(console_origin: Option<&str>, id: i64) -> String {
    match console_origin {
        Some(origin) => format!("{}/requests/{id}", origin.trim_end_matches('/')),
        None => format!("rosterd-request-{id}"),
    }
}

/// The decision an approval lands: the worker, by key, joins until the request's last day.
pub fn grant(request: &AccessRequest, approved_by: &str, ticket: &str) -> Decision {
    Decision::Grant {
        group: request.group.clone(),
        grant: Grant {
            who: Who::Key(request.worker.clone()),
            reason: Some(request.justification.trim().to_string()).filter(|r| !r.is_empty()),
            ticket: Some(ticket.to_string()),
            expires: NaiveDate::parse_from_str(&request.until, "%Y-%m-%d").ok(),
            added_by: request.requester_email.clone(),
            reviewed: None,
        },
        requested_by: request.requested_by.clone(),
        approved_by: approved_by.to_string(),
        request: ticket.to_string(),
    }
}

/// Whether `rules` grant what the request with `ticket` asked: an entry of the group's
/// `include` or `members` that carries the ticket.
pub fn in_rules(rules: &RuleSet, group: &str, ticket: &str) -> bool {
    rules.lookup(group).is_some_and(|id| {
        rules
            .group(id)
            .granted()
            .1
            .iter()
            .any(|e| e.ticket.as_deref() == Some(ticket))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleSet {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("g.yaml"),
            "groups:\n  - name: figma-admins\n    kind: manual\n    owners: [ada@example.com]\n    requests: { max_days: 30, justification: required }\n    members:\n      - id: W1\n        ticket: https://rosterd.example.com/requests/12\n  - name: all\n    kind: managed\n    rule: 'true'\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let schema = crate::directory::generate::schema();
        let ctx = crate::rules::Context {
            schema: &schema,
            targets: Vec::new(),
            addressed: Vec::new(),
            eligibility: None,
        };
        crate::rules::load(dir.path(), &ctx).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_request_asks_within_the_groups_limits() {
        let rules = rules();
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default();
        assert_eq!(
            ask(&rules, "figma-admins", 30, "audit", today),
            Ok(Asked {
                list: "members",
                until: NaiveDate::from_ymd_opt(2027, 1, 6).unwrap_or_default()
            })
        );
        assert_eq!(
            ask(&rules, "figma-admins", 31, "audit", today).map_err(|e| e.to_string()),
            Err("group `figma-admins` grants at most 30 days; ask for 1 to 30".into())
        );
        assert_eq!(
            ask(&rules, "figma-admins", 5, "  ", today),
            Err(AskError::Justification("figma-admins".into()))
        );
        assert_eq!(
            ask(&rules, "all", 5, "x", today),
            Err(AskError::NotRequestable("all".into()))
        );
        assert_eq!(
            requestable(&rules)
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>(),
            ["figma-admins"]
        );
    }

    #[test]
    fn a_ticket_is_found_by_the_whole_value() {
        let rules = rules();
        assert!(in_rules(
            &rules,
            "figma-admins",
            &ticket(Some("https://rosterd.example.com/"), 12)
        ));
        assert!(!in_rules(
            &rules,
            "figma-admins",
            &ticket(Some("https://rosterd.example.com"), 1)
        ));
        assert_eq!(ticket(None, 7), "rosterd-request-7");
    }
}
