//! A pushed group that left the rules, or stopped pushing to a target: unlinked (left as it
//! is) or deleted, as `on_unpush` says; linked groups are never deleted.

use super::outcome::Halt;
use super::pair::failsafe_reason;
use super::{PairReport, Stop, TargetRun};
use crate::config::OnUnpush;
use crate::rules::Failsafe;
use crate::store::{Confirmed, OutboxAction, OutboxPayload, PairAction, TargetGroup};

impl TargetRun<'_> {
    /// A pushed group left the rules, or stopped pushing here.
    pub(super) async fn unpush(
        &self,
        state: &TargetGroup,
        members: Option<&Confirmed>,
        overrides: Failsafe,
    ) -> Result<PairReport, Stop> {
        let mut report = PairReport {
            group: state.group.clone(),
            display_name: state.display_name.clone(),
            scim_id: Some(state.scim_id.clone()),
            ..PairReport::default()
        };
        if self.config.on_unpush == OnUnpush::Keep || state.linked {
            report.action = Some(PairAction::Unlinked);
            if !self.options.dry_run {
                self.store
                    .forget_target_group(self.name, &state.group, None, &self.now)
                    .await?;
            }
            return Ok(report);
        }
        let current = members.map_or(0, Confirmed::len);
        let reason = failsafe_reason(current, current, &self.config.failsafe, &overrides);
        let outcome = async {
            if !self
                .failsafe(&state.group, reason, 0, current, current, &mut report)
                .await?
            {
                return Ok(());
            }
            report.action = Some(PairAction::Deleted);
            report.removed = current;
            let payload = OutboxPayload {
                scim_id: Some(state.scim_id.clone()),
                display_name: Some(state.display_name.clone()),
                ..OutboxPayload::default()
            };
            self.send_all(
                &state.group,
                vec![(OutboxAction::Delete, payload)],
                &mut Confirmed::default(),
                &mut report,
            )
            .await
            .map(|_| ())
        }
        .await;
        match outcome {
            Ok(()) | Err(Halt::GroupMissing) => Ok(report),
            Err(Halt::Failed(message) | Halt::Pending(message)) => {
                report.error = Some(message);
                Ok(report)
            }
            Err(Halt::Unknown | Halt::Reread(..)) => {
                report.error =
                    Some("the answer to the delete was lost; the next push sends it again".into());
                Ok(report)
            }
            // A delete adds no one; a refusal of it is recorded as any other.
            Err(Halt::Refused(refusal, _)) => {
                report.error = Some(self.refusal_stands(&state.group, &refusal).await?);
                Ok(report)
            }
            Err(Halt::Stop(stop)) => Err(stop),
        }
    }
}
