//! How a request, and a pair's push, ended when it did not simply succeed: one type for
//! both, so that what a request found (a group to read back, a refusal with what the pair
//! held) reaches the pair whole, and what the pair decides reaches the outbox whole.

use super::Stop;
use crate::http::client::TargetError;
use crate::store::{Confirmed, StoreError, TargetGroup};

pub(super) enum Halt {
    /// 404: the target lost the group: find or create it again.
    GroupMissing,
    /// The request may or may not have been applied: its answer was lost.
    Unknown,
    /// So read the group back, with what was known before that request.
    Reread(TargetGroup, Confirmed),
    /// The target refused the request for good (recorded on its outbox entry); this pair
    /// could not be pushed, the others go on.
    Failed(String),
    /// Retries ran out; the entry stays pending for the next push, and this pair stops.
    Pending(String),
    /// The target refused a request that added members, perhaps for a user id it no longer
    /// knows: not recorded yet, the pair looks those workers up again first. With the group
    /// and what it held when the refusal came after the group was known.
    Refused(Box<Refusal>, Option<(TargetGroup, Confirmed)>),
    /// The whole target's push stops (credentials, the store, the leadership).
    Stop(Stop),
}

/// A refused request that added members: the entry, its attempts, the answer, and the
/// workers it added.
pub(super) struct Refusal {
    pub entry: i64,
    pub sent: i64,
    pub error: TargetError,
    pub workers: Vec<u32>,
}

impl From<Stop> for Halt {
    fn from(s: Stop) -> Self {
        Halt::Stop(s)
    }
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Stop(Stop::Store(e))
    }
}
