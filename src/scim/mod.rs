//! SCIM 2.0 (RFC 7643/7644): the wire types, the client rosterd pushes with, and an emulator
//! of a target for tests and the quickstart.

pub mod client;
pub mod emulator;
pub mod wire;

pub use crate::http::client::Request;
pub use client::Client;
