//! The states the store keeps as text. Each is an enum whose text is written once, in its
//! declaration below: the database, JSON, the CLI and the console all read and write it
//! through `as_str` and `parse`, so no surface compares a literal of its own.

use crate::text::stored_text;

pub use crate::directory::ChangeKind;

stored_text! {
    /// How a run's evaluation ended (its push is told by [`RunOutcome`]).
    pub enum RunStatus ("run status") {
        Succeeded = "succeeded",
        /// The failsafe held the snapshot; nothing changed.
        Held = "held",
        Failed = "failed",
    }
}

stored_text! {
    /// What a run did as a whole, its evaluation and its push together: the one account every
    /// surface gives of it.
    pub enum RunOutcome ("run outcome") {
        /// Evaluated, and every push it made went through.
        Succeeded = "succeeded",
        /// Evaluated and pushed, but the failsafe or a guardrail held some pushes.
        SucceededWithHeldPushes = "succeeded_with_held_pushes",
        /// The directory failsafe held the snapshot: nothing changed.
        Held = "held",
        /// Some targets (or groups) could not be pushed; the others were.
        PartlyFailed = "partly_failed",
        /// The run, or every push it had to make, failed.
        Failed = "failed",
        /// The daemon was stopped before the run's push finished; what is unsent waits in the
        /// outbox for the next run.
        CutShort = "cut_short",
        /// Nothing changed and nothing had to be sent.
        NothingToDo = "nothing_to_do",
    }
}

impl RunOutcome {
    /// What a run whose push has not finished (or that pushed nothing) says by its status.
    pub fn of_status(status: RunStatus) -> RunOutcome {
        match status {
            RunStatus::Held => RunOutcome::Held,
            RunStatus::Failed => RunOutcome::Failed,
            RunStatus::Succeeded => RunOutcome::Succeeded,
        }
    }

    /// Whether the run did all it had to (nothing held, nothing failed).
    pub fn is_clean(self) -> bool {
        matches!(self, RunOutcome::Succeeded | RunOutcome::NothingToDo)
    }
}

stored_text! {
    /// Where a snapshot of the HR export stands.
    pub enum SnapshotStatus ("snapshot status") {
        /// The snapshot evaluations use.
        Current = "current",
        /// Was current once.
        Superseded = "superseded",
        /// Stopped by the failsafe; not used until approved.
        Held = "held",
        /// Approved after a hold; becomes current at the next run.
        Approved = "approved",
    }
}

stored_text! {
    /// What a request in the outbox does to a target's group.
    pub enum OutboxAction ("outbox action") {
        Create = "create",
        Add = "add",
        Remove = "remove",
        /// Adds and removes in one PATCH: a group's last batch of additions shares its request
        /// with the first removals.
        Update = "update",
        Rename = "rename",
        Delete = "delete",
    }
}

stored_text! {
    /// Where a request in the outbox stands.
    pub enum OutboxStatus ("outbox status") {
        /// Waiting to be sent (or re-sent).
        Pending = "pending",
        /// The target accepted it.
        Done = "done",
        /// The target refused it, or it could not be sent; kept for `status` and retries.
        Failed = "failed",
        /// A later plan for the same pair replaced it before it was sent.
        Superseded = "superseded",
    }
}

stored_text! {
    /// Where a push held by the removal failsafe or a guardrail stands.
    pub enum HoldStatus ("push hold status") {
        /// Waiting for a person to approve it.
        Held = "held",
        /// Approved; the next push sends it.
        Approved = "approved",
        /// A push used the approval and sent it.
        Released = "released",
        /// The push no longer needed a hold (the rules or the export changed back).
        Superseded = "superseded",
    }
}

impl HoldStatus {
    /// Still holding its push: held, or approved and not sent yet.
    pub fn is_open(self) -> bool {
        matches!(self, HoldStatus::Held | HoldStatus::Approved)
    }
}

stored_text! {
    /// How a target's group was found to differ from what rosterd last wrote to it.
    pub enum DriftKind ("drift kind") {
        /// A member rosterd did not put there.
        Extra = "extra",
        /// A member rosterd put there that is gone.
        Missing = "missing",
        /// A member listed more than once.
        Duplicate = "duplicate",
        /// A member id that is no user of the target.
        NotAUser = "not_a_user",
        /// The group is gone from the target.
        GroupMissing = "group_missing",
        /// The group was renamed outside rosterd (named back by the push).
        Renamed = "renamed",
    }
}

stored_text! {
    /// What a push did to a target's group as a whole.
    pub enum PairAction ("pair action") {
        Created = "created",
        /// A group of that name was found on the target and taken on.
        Adopted = "adopted",
        /// Linked to a group made outside rosterd, as the rules asked (`link: true`).
        Linked = "linked",
        /// Left on the target, no longer kept by rosterd.
        Unlinked = "unlinked",
        Deleted = "deleted",
        /// Its push is switched off (`active: false`): nothing is sent.
        Inactive = "inactive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state's text is read back as the same state, JSON gives the same text, and a
    /// text no state has is an error that names the kind, never a default.
    fn round_trips<T>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Result<T, sqlx::Error>,
        what: &str,
    ) where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize,
    {
        let mut seen = std::collections::BTreeSet::new();
        for &v in all {
            assert!(seen.insert(as_str(v)), "{what}: `{}` twice", as_str(v));
            assert_eq!(parse(as_str(v)).unwrap(), v);
            assert_eq!(serde_json::to_value(v).unwrap(), as_str(v));
        }
        let err = parse("no-such-state").unwrap_err().to_string();
        assert!(err.contains(what) && err.contains("no-such-state"), "{err}");
    }

    #[test]
    fn every_state_kept_as_text_round_trips() {
        round_trips(
            RunStatus::ALL,
            RunStatus::as_str,
            RunStatus::parse,
            "run status",
        );
        round_trips(
            RunOutcome::ALL,
            RunOutcome::as_str,
            RunOutcome::parse,
            "run outcome",
        );
        round_trips(
            SnapshotStatus::ALL,
            SnapshotStatus::as_str,
            SnapshotStatus::parse,
            "snapshot status",
        );
        round_trips(
            ChangeKind::ALL,
            ChangeKind::as_str,
            ChangeKind::parse,
            "snapshot change",
        );
        round_trips(
            OutboxAction::ALL,
            OutboxAction::as_str,
            OutboxAction::parse,
            "outbox action",
        );
        round_trips(
            OutboxStatus::ALL,
            OutboxStatus::as_str,
            OutboxStatus::parse,
            "outbox status",
        );
        round_trips(
            HoldStatus::ALL,
            HoldStatus::as_str,
            HoldStatus::parse,
            "push hold status",
        );
        round_trips(
            DriftKind::ALL,
            DriftKind::as_str,
            DriftKind::parse,
            "drift kind",
        );
        round_trips(
            PairAction::ALL,
            PairAction::as_str,
            PairAction::parse,
            "pair action",
        );
    }

    #[test]
    fn a_hold_is_open_while_held_or_approved() {
        let open: Vec<_> = HoldStatus::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [&HoldStatus::Held, &HoldStatus::Approved]);
    }
}

stored_text! {
    /// Where an access request made in the console stands.
    pub enum RequestState ("request state") {
        /// Asked for; waits for one of the group's approvers.
        Pending = "pending",
        /// Approved, and committed to a branch of the rules repository for review.
        Approved = "approved",
        /// Refused by an approver: nothing was written.
        Denied = "denied",
        /// Taken back by the person who asked, before anyone decided.
        Withdrawn = "withdrawn",
        /// Its entry is on the rules repository's main branch.
        Merged = "merged",
        /// The daemon's rules in force grant it.
        InForce = "in_force",
        /// Its last day has passed.
        Expired = "expired",
        /// It was in force, and its entry left the rules in force before its last day (a
        /// review removed it, or someone did by hand).
        Ended = "ended",
    }
}

impl RequestState {
    /// Whether nobody has decided it yet.
    pub fn is_open(self) -> bool {
        self == RequestState::Pending
    }

    /// The states of a request that is still under way: undecided, or granting (or about
    /// to grant) what it asked. The daemon follows these; a worker has one per group at most.
    pub const LIVE: &'static [RequestState] = &[
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Merged,
        RequestState::InForce,
    ];

    /// For a person: `in force`, not `in_force`.
    pub fn label(self) -> &'static str {
        match self {
            RequestState::InForce => "in force",
            s => s.as_str(),
        }
    }
}

stored_text! {
    /// What was decided about a person's entry in a group.
    pub enum AccessDecision ("access decision") {
        /// A request was approved: the entry was added.
        Grant = "grant",
        /// A request was denied: nothing was written.
        Deny = "deny",
        /// A review kept the entry (and may have moved its end date).
        Keep = "keep",
        /// A review removed the entry.
        Remove = "remove",
    }
}
