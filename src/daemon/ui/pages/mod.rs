//! The console's pages. Each reads what the JSON API reads (the store, the rules in force,
//! the snapshot in force evaluated and kept in memory) and renders it; none changes state
//! but the approval, which is a POST with the session's CSRF token from an approver.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::{html, Markup};

use super::html::{page, seg, size_chart, when, PageError, PageResult};
use super::{csrf_ok, redirect, CsrfForm, Person, Ui, WithStatus};
use crate::engine::explain::Node;
use crate::store::{HoldStatus, StoreError};
use crate::text::thousands;

/// Members listed per page of a group.
pub(super) const MEMBERS_PER_PAGE: usize = 100;
/// A run's changes listed per page.
pub(super) const CHANGES_PER_PAGE: usize = 200;
/// Groups listed at once (the search narrows them).
pub(super) const GROUPS_LISTED: usize = 500;

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<usize>,
    group: Option<String>,
    approved: Option<i64>,
    standby: Option<u8>,
    /// After "Sync now": `queued`, or `standby` where this instance cannot run it.
    sync: Option<String>,
    /// A group's members on this date (`YYYY-MM-DD`).
    date: Option<String>,
}

pub(super) type Q = Query<ListQuery>;

pub(super) fn page_of(q: &ListQuery) -> usize {
    q.page.unwrap_or(1).max(1)
}

/// Links to the neighbouring pages of a list of `total`.
pub(super) fn pager(base: &str, page: usize, per: usize, total: usize) -> Markup {
    let pages = total.div_ceil(per).max(1);
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        @if pages > 1 {
            div.pager {
                @if page > 1 { a href=(format!("{base}{sep}page={}", page - 1)) { "← previous" } }
                span.muted { "page " (page) " of " (pages) }
                " "
                @if page < pages { a href=(format!("{base}{sep}page={}", page + 1)) { "next →" } }
            }
        }
    }
}

mod decide;
mod groups;
mod holds;
mod overview;
mod plan;
mod requests;
mod reviews;
mod runs;
mod workers;

pub use decide::*;
pub use groups::*;
pub use holds::*;
pub use overview::*;
pub use plan::*;
pub use requests::*;
pub use reviews::*;
pub use runs::*;
pub use workers::*;
