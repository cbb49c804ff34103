//! Access requests and access reviews, kept as code: a decision about who may be in a
//! group lands as a commit to the rules repository (`land`), which the repository's own
//! merge-request checks judge like any other change; `due` says which entries their
//! approvers must look at again.

pub mod due;
pub mod git;
pub mod land;
pub mod request;

pub use due::{due, is_approver, Due, Why};
pub use land::{land, Decision, LandError, Landed};
