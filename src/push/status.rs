//! What rosterd can say of each target from what it measured: whether the target answers,
//! what waits to be sent or was refused, which pushes are held, and, per pushed group, when it
//! was last read back and what that found. One model, read by `rosterd status`, the console,
//! `GET /api/v1/targets` and `/metrics`, so that none of them can tell it differently.
//!
//! A target is **healthy** when its last push was answered and every group pushed to it was
//! read back within `verify_every` and then held what rosterd knew (or every difference was
//! repaired and the target confirmed the repair). What was sent and not read back since does
//! not count as held.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{Config, TargetConfig};
use crate::rules::RuleSet;
use crate::store::{
    OutboxStatus, PushHold, Store, StoreError, TargetGroup, TargetHealth, TargetVerification,
    VerifyState,
};

/// Why a target is, or is not, healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// No `url`: a name rules may push to, nothing is sent.
    NotConnected,
    /// No push has reached it yet.
    NotPushedYet,
    /// Its last push failed for want of an answer or of credentials.
    Unreachable {
        since: String,
        reason: String,
    },
    /// It answers, but these groups were not read back within `verify_every` (or never).
    Unverified {
        groups: Vec<String>,
    },
    /// Their last read back found differences not repaired yet.
    Drifted {
        groups: Vec<String>,
    },
    Healthy {
        since: String,
    },
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy { .. })
    }

    /// The state's name, as JSON's `state` and the metrics' label give it.
    pub fn state(&self) -> &'static str {
        match self {
            Health::NotConnected => "not_connected",
            Health::NotPushedYet => "not_pushed_yet",
            Health::Unreachable { .. } => "unreachable",
            Health::Unverified { .. } => "unverified",
            Health::Drifted { .. } => "drifted",
            Health::Healthy { .. } => "healthy",
        }
    }

    /// One line, as `status` and the console say it.
    pub fn text(&self) -> String {
        match self {
            Health::NotConnected => "not connected (no url)".into(),
            Health::NotPushedYet => "not pushed yet".into(),
            Health::Unreachable { since, reason } => format!("unhealthy since {since}: {reason}"),
            Health::Unverified { groups } => format!(
                "unverified: {} not read back within verify_every ({})",
                crate::text::count(groups.len() as u64, "group"),
                groups.join(", ")
            ),
            Health::Drifted { groups } => format!(
                "drifted: {} differ from what rosterd pushed and are not repaired yet ({})",
                crate::text::count(groups.len() as u64, "group"),
                groups.join(", ")
            ),
            Health::Healthy { since } => format!("healthy since {since}"),
        }
    }
}

/// What the last read back of one pushed group found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verification {
    /// The rules push it here, but the target has no group of it that rosterd knows.
    NotInTarget,
    /// Never read back: nothing is known of what it holds but what was sent.
    Never,
    /// Read back, but longer ago than `verify_every`.
    Stale { at: String },
    Current {
        at: String,
        drift: i64,
        outcome: VerifyState,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub group: String,
    pub display_name: String,
    pub scim_id: Option<String>,
    /// Entries in the target as rosterd last knew them (read or confirmed).
    pub members: i64,
    pub pushed_at: Option<String>,
    pub verification: Verification,
    /// Requests stored and not sent yet, and requests the target refused.
    pub pending: i64,
    pub failed: i64,
    /// The open hold of its push here, if one is open.
    pub hold: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub health: Health,
    /// Whether its last push was answered (`None` before any); since when, and why not.
    pub answers: Option<bool>,
    pub since: Option<String>,
    pub reason: Option<String>,
    pub verify_every: String,
    /// When a group was last pushed here.
    pub last_push: Option<String>,
    /// Requests stored and not sent yet, and requests the target refused, over its groups.
    pub pending: i64,
    pub failed: i64,
    /// Its pushes held or approved and not sent yet.
    pub holds: Vec<PushHold>,
    pub groups: Vec<GroupStatus>,
    #[serde(flatten)]
    pub seen: TargetVerification,
}

/// Every configured target's status as of `now`. `rules` (when they load) name the groups
/// pushed to each, including those not in the target yet.
pub async fn targets(
    config: &Config,
    rules: Option<&RuleSet>,
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<BTreeMap<String, TargetStatus>, StoreError> {
    let health: BTreeMap<String, TargetHealth> = store
        .target_health()
        .await?
        .into_iter()
        .map(|h| (h.target.clone(), h))
        .collect();
    let mut seen = store.target_verifications().await?;
    let outbox = store.outbox_counts().await?;
    let holds = store.open_push_holds().await?;
    let mut out = BTreeMap::new();
    for (name, target) in &config.targets {
        let known = store.target_groups(name).await?;
        let members = store.target_member_counts(name).await?;
        let mut groups = groups_of(name, target, rules, &known, &members, now);
        let count = |group: &str, status| {
            outbox
                .get(&(name.clone(), group.to_string(), status))
                .copied()
                .unwrap_or(0)
        };
        let holds: Vec<PushHold> = holds
            .iter()
            .filter(|h| &h.target == name)
            .cloned()
            .collect();
        for g in &mut groups {
            g.pending = count(&g.group, OutboxStatus::Pending);
            g.failed = count(&g.group, OutboxStatus::Failed);
            g.hold = holds.iter().find(|h| h.group == g.group).map(|h| h.id);
        }
        // Requests of groups no longer pushed here count too: they were stored for it.
        let total = |status| {
            outbox
                .iter()
                .filter(|((t, _, s), _)| t == name && *s == status)
                .map(|(_, n)| n)
                .sum()
        };
        let h = health.get(name);
        out.insert(
            name.clone(),
            TargetStatus {
                health: assess(target, h, &groups),
                answers: h.map(|h| h.healthy),
                since: h.map(|h| h.since.clone()),
                reason: h.and_then(|h| h.reason.clone()),
                verify_every: target.verify_every.to_string(),
                last_push: known.values().filter_map(|g| g.pushed_at.clone()).max(),
                pending: total(OutboxStatus::Pending),
                failed: total(OutboxStatus::Failed),
                holds,
                groups,
                seen: seen.remove(name).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// One group's push to one target, from the same model: what `GET /api/v1/groups/{name}` and
/// the console's group page show of it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPush {
    pub target: String,
    /// The target's health as a whole (its `state`, and what it rests on).
    pub target_health: Health,
    #[serde(flatten)]
    pub status: GroupStatus,
    /// The open hold of this push, whole.
    pub hold: Option<PushHold>,
}

/// `group`'s pushes, one per target that knows it or that the rules push it to.
pub async fn of_group(
    config: &Config,
    rules: Option<&RuleSet>,
    store: &Store,
    group: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<GroupPush>, StoreError> {
    Ok(targets(config, rules, store, now)
        .await?
        .into_iter()
        .filter_map(|(target, t)| {
            let status = t.groups.into_iter().find(|g| g.group == group)?;
            let hold = t.holds.into_iter().find(|h| Some(h.id) == status.hold);
            Some(GroupPush {
                target,
                target_health: t.health,
                status,
                hold,
            })
        })
        .collect())
}

fn groups_of(
    target: &str,
    config: &TargetConfig,
    rules: Option<&RuleSet>,
    known: &BTreeMap<String, TargetGroup>,
    members: &BTreeMap<String, i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<GroupStatus> {
    let every = config.verify_every.span();
    let mut out: BTreeMap<String, GroupStatus> = known
        .values()
        .map(|g| {
            (
                g.group.clone(),
                GroupStatus {
                    group: g.group.clone(),
                    display_name: g.display_name.clone(),
                    scim_id: Some(g.scim_id.clone()),
                    members: members.get(&g.group).copied().unwrap_or(0),
                    pushed_at: g.pushed_at.clone(),
                    verification: verification(g, every, now),
                    pending: 0,
                    failed: 0,
                    hold: None,
                },
            )
        })
        .collect();
    for group in rules.map(RuleSet::groups).into_iter().flatten() {
        for push in group.push.iter().filter(|p| p.target == target && p.active) {
            out.entry(group.name.clone())
                .or_insert_with(|| GroupStatus {
                    group: group.name.clone(),
                    display_name: push.display_name.clone(),
                    scim_id: None,
                    members: 0,
                    pushed_at: None,
                    verification: Verification::NotInTarget,
                    pending: 0,
                    failed: 0,
                    hold: None,
                });
        }
    }
    out.into_values().collect()
}

fn verification(
    g: &TargetGroup,
    every: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Verification {
    let Some(at) = &g.verified_at else {
        return Verification::Never;
    };
    let when = chrono::DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&chrono::Utc));
    match when {
        Ok(when) if now - when < every => Verification::Current {
            at: at.clone(),
            drift: g.verified_drift.unwrap_or(0),
            outcome: g.verify_state.unwrap_or(VerifyState::Matched),
        },
        _ => Verification::Stale { at: at.clone() },
    }
}

/// The target's health from what its requests and reads showed (see the module's words).
fn assess(target: &TargetConfig, health: Option<&TargetHealth>, groups: &[GroupStatus]) -> Health {
    if target.url.is_none() {
        return Health::NotConnected;
    }
    let Some(h) = health else {
        return Health::NotPushedYet;
    };
    if !h.healthy {
        return Health::Unreachable {
            since: h.since.clone(),
            reason: h.reason.clone().unwrap_or_default(),
        };
    }
    let named = |f: fn(&Verification) -> bool| -> Vec<String> {
        groups
            .iter()
            .filter(|g| f(&g.verification))
            .map(|g| g.group.clone())
            .collect()
    };
    let drifted = named(|v| {
        matches!(
            v,
            Verification::Current {
                outcome: VerifyState::Drifted,
                ..
            }
        )
    });
    if !drifted.is_empty() {
        return Health::Drifted { groups: drifted };
    }
    let unverified = named(|v| !matches!(v, Verification::Current { .. }));
    if !unverified.is_empty() {
        return Health::Unverified { groups: unverified };
    }
    Health::Healthy {
        since: h.since.clone(),
    }
}

impl Verification {
    /// In words, as `status` says it.
    pub fn text(&self) -> String {
        match self {
            Verification::NotInTarget => "not in the target".into(),
            Verification::Never => "never read back".into(),
            Verification::Stale { at } => {
                format!("last read back {at}, longer ago than verify_every")
            }
            Verification::Current { at, drift: 0, .. } => format!("read back {at}: as pushed"),
            Verification::Current { at, drift, outcome } => format!(
                "read back {at}: {} found, {}",
                crate::text::count(*drift as u64, "difference"),
                match outcome {
                    VerifyState::Drifted => "not repaired yet",
                    _ => "repaired",
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn status(v: Verification) -> GroupStatus {
        GroupStatus {
            group: "g".into(),
            display_name: "g".into(),
            scim_id: None,
            members: 0,
            pushed_at: None,
            verification: v,
            pending: 0,
            failed: 0,
            hold: None,
        }
    }

    fn target() -> TargetConfig {
        serde_yaml::from_str("url: http://127.0.0.1:1/scim").unwrap()
    }

    #[test]
    fn healthy_only_when_every_group_was_read_back_recently_and_held_what_was_known() {
        let up = TargetHealth {
            target: "t".into(),
            healthy: true,
            reason: None,
            since: "2026-12-06T00:00:00Z".into(),
        };
        let current = |outcome| Verification::Current {
            at: "2026-12-06T10:00:00Z".into(),
            drift: 3,
            outcome,
        };
        let t = target();
        let h = |v: Verification| assess(&t, Some(&up), &[status(v)]);
        assert!(h(current(VerifyState::Matched)).is_healthy());
        assert!(h(current(VerifyState::Repaired)).is_healthy());
        assert!(matches!(
            h(current(VerifyState::Drifted)),
            Health::Drifted { .. }
        ));
        for v in [
            Verification::Never,
            Verification::NotInTarget,
            Verification::Stale { at: "x".into() },
        ] {
            assert!(matches!(h(v), Health::Unverified { .. }));
        }
        assert_eq!(assess(&t, None, &[]), Health::NotPushedYet);
        let down = TargetHealth {
            healthy: false,
            reason: Some("refused".into()),
            ..up
        };
        assert!(matches!(
            assess(&t, Some(&down), &[status(current(VerifyState::Matched))]),
            Health::Unreachable { .. }
        ));
    }

    /// `state()` (the metrics' label) names each state as its JSON does.
    #[test]
    fn a_states_name_is_its_json_tag() {
        for h in [
            Health::NotConnected,
            Health::NotPushedYet,
            Health::Unreachable {
                since: "s".into(),
                reason: "r".into(),
            },
            Health::Unverified { groups: vec![] },
            Health::Drifted { groups: vec![] },
            Health::Healthy { since: "s".into() },
        ] {
            assert_eq!(serde_json::to_value(&h).unwrap()["state"], h.state());
        }
    }

    #[test]
    fn a_read_older_than_verify_every_is_stale() {
        let mut g = TargetGroup::new("g", "1".into(), "g".into(), false);
        let day = chrono::Duration::hours(24);
        let now = at("2026-12-06T12:00:00Z");
        assert_eq!(verification(&g, day, now), Verification::Never);
        g.verified_at = Some("2026-12-05T11:00:00Z".into());
        assert!(matches!(
            verification(&g, day, now),
            Verification::Stale { .. }
        ));
        g.verified_at = Some("2026-12-05T13:00:00Z".into());
        g.verify_state = Some(VerifyState::Drifted);
        assert!(matches!(
            verification(&g, day, now),
            Verification::Current {
                outcome: VerifyState::Drifted,
                ..
            }
        ));
    }
}
