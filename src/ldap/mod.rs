//! LDAP directories and Active Directory (`kind: ldap`), over the `ldap3` crate: groups are
//! entries under a configured base (`groupOfNames`, `groupOfUniqueNames`, or AD's `group`),
//! their members the users' DNs. A group is known by its `entryUUID` (AD: `objectGUID`),
//! which a rename (`modrdn`) keeps; a user by its DN, compared as [`dn::normalize`] writes
//! it. Members outside the users' base (nested groups, service accounts elsewhere) are
//! kept: reported, never removed.
//!
//! [`conn`] holds the connection (TLS by default, a simple or SASL EXTERNAL bind), its
//! pacing, retries and counts; [`ops`] the reads and changes a push asks for.

pub mod conn;
pub mod dn;
pub mod ops;

pub use conn::Client;
