//! A group's `requests:` block: who may decide requests for it, for how long an entry may be
//! granted, and how often its entries are reviewed.

use super::load::Reader;
use super::yaml::{Node, NodeKind};
use super::{Approver, Diagnostic, GroupKind, Requests, Span, REVIEW_EVERY_DAYS};

const REQUESTS_KEYS: &[&str] = &["approvers", "max_days", "justification", "review_every"];
/// The longest an entry may be granted or reviewed for: ten years.
const MAX_DAYS: f64 = 3650.0;

impl Reader<'_> {
    /// Reads `requests:`; only hybrid and manual groups take people by hand.
    pub(super) fn requests(
        &mut self,
        node: &Node,
        kind: GroupKind,
        key: Option<Span>,
    ) -> Option<Requests> {
        if kind == GroupKind::Managed {
            self.diags.push(
                Diagnostic::error(key.unwrap_or(node.span), "`requests` is not allowed on a managed group")
                    .with_help("a managed group is its rule alone, so nobody can be added to it by request; use `kind: hybrid`"),
            );
            return None;
        }
        let f = self.fields(node, REQUESTS_KEYS, "`requests`")?;
        let (approvers, approver_spans) = f
            .get("approvers")
            .map(|n| {
                let items = self.seq(n, "`approvers`");
                items
                    .iter()
                    .filter_map(|i| Some((self.approver(i)?, i.span)))
                    .unzip()
            })
            .unwrap_or_default();
        let justification_required = match f.get("justification") {
            None => Some(true),
            Some(n) => self.justification(n),
        };
        let max_days = self.days(f.get("max_days"), "max_days", 90);
        let review_every_days = self.days(f.get("review_every"), "review_every", REVIEW_EVERY_DAYS);
        Some(Requests {
            approvers,
            approver_spans,
            max_days: max_days?,
            justification_required: justification_required?,
            review_every_days: review_every_days?,
            span: node.span,
        })
    }

    fn justification(&mut self, node: &Node) -> Option<bool> {
        match self.string(node, "`required` or `optional`")?.as_str() {
            "required" => Some(true),
            "optional" => Some(false),
            other => {
                self.error(
                    node.span,
                    format!("`justification` is `required` or `optional`, not `{other}`"),
                );
                None
            }
        }
    }

    /// A whole number of days from 1 to ten years.
    fn days(&mut self, node: Option<&Node>, field: &str, default: u32) -> Option<u32> {
        let Some(node) = node else {
            return Some(default);
        };
        let n = self.number(node, "a number of days")?;
        if n.fract() != 0.0 || !(1.0..=MAX_DAYS).contains(&n) {
            self.error(
                node.span,
                format!("`{field}` must be a whole number of days from 1 to {MAX_DAYS}"),
            );
            return None;
        }
        Some(n as u32)
    }

    /// `jane@example.com`, `group: NAME` or `claim: NAME`.
    fn approver(&mut self, node: &Node) -> Option<Approver> {
        if let NodeKind::Scalar(_) = &node.kind {
            let email = self.string(node, "an approver")?;
            if !crate::config::is_address(&email) {
                self.diags.push(
                    Diagnostic::error(node.span, format!("`{email}` is not an email address"))
                        .with_help("an approver is an email, `group: NAME` (a rosterd group) or `claim: NAME` (a group in the identity provider's claim)"),
                );
                return None;
            }
            return Some(Approver::Email(email));
        }
        let f = self.fields(node, &["group", "claim"], "an approver")?;
        match (f.get("group"), f.get("claim")) {
            (Some(g), None) => Some(Approver::Group(self.string(g, "a group name")?)),
            (None, Some(c)) => Some(Approver::Claim(self.string(c, "a claim group")?)),
            _ => {
                self.error(node.span, "an approver has one of `group` or `claim`");
                None
            }
        }
    }
}
