//! Worker → target user, cached in the store. Few unresolved workers are looked up with a
//! filter each; many with the user list in pages, when that takes fewer requests.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use roaring::RoaringBitmap;

use super::target::{FoundUser, UserPage};
use super::{Stop, TargetRun};
use crate::config::UserLookup;
use crate::http::client::TargetError;
use crate::store::{CachedUser, TargetLookup};

/// Each worker's user id, and every user id when the users were listed whole.
type Found = (HashMap<String, Option<String>>, Option<HashSet<String>>);

/// How a lookup learned from a probe that contradicts the target's /Schemas is stored.
pub const SCHEMAS_WRONG: &str = "probe (contradicts /Schemas)";

/// At most this many lookups are made with filters before listing is considered.
const FILTER_ALWAYS_BELOW: usize = 10;

/// A target's users as this push knows them.
#[derive(Debug, Default, Clone)]
pub(super) struct Users {
    /// Worker id → the user id the cache holds (for every cached worker: a worker who left
    /// is removed by it).
    pub ids: HashMap<u32, String>,
    /// User id → worker id.
    pub workers: HashMap<String, u32>,
    /// The wanted workers who have an account, looked up or freshly cached.
    pub accounts: RoaringBitmap,
    /// Workers whose user id this push replaced: (worker id, key, old user id).
    pub moved: Vec<(u32, String, String)>,
    /// Every user id of the target, when this push listed them all (a reconcile does):
    /// an entry not among them is no user's.
    pub all: Option<HashSet<String>>,
}

impl Users {
    fn set(&mut self, worker: u32, user: Option<String>) {
        if let Some(old) = self.ids.remove(&worker) {
            self.workers.remove(&old);
        }
        if let Some(user) = user {
            self.workers.insert(user.clone(), worker);
            self.ids.insert(worker, user);
        }
    }
}

impl TargetRun<'_> {
    /// Each wanted worker's user id in the target, from the cache while it is fresh, else
    /// looked up; a worker without an account (or without a value to match by) is not in
    /// `accounts`.
    pub(super) async fn resolve(&self, wanted: &RoaringBitmap) -> Result<Users, Stop> {
        let cache = self.store.target_users(self.name).await?;
        let numbering = &self.desired.workers;
        let mut users = Users::default();
        for (key, cached) in &cache {
            if let (Some(user), Some(id)) = (&cached.user_id, numbering.id(key)) {
                users.set(id, Some(user.clone()));
            }
        }
        let mut todo: Vec<(u32, &str, &str)> = Vec::new();
        for id in wanted {
            let (Some(key), Some(value)) = (numbering.key(id), self.match_value(id)) else {
                continue;
            };
            match cache.get(key) {
                // A reconcile checks every user id: the target may have re-created them.
                Some(cached) if self.fresh(cached, value) && !self.reconcile => {
                    if cached.user_id.is_some() {
                        users.accounts.insert(id);
                    }
                }
                _ => todo.push((id, key, value)),
            }
        }
        if todo.is_empty() {
            return Ok(users);
        }
        let (found, all) = self.look_up_workers(&todo).await?;
        users.all = all;
        // What was looked up now, the target has shown.
        self.evidence
            .confirm(&todo.iter().map(|(id, _, _)| *id).collect());
        let mut save = Vec::with_capacity(todo.len());
        for (id, key, value) in todo {
            let user = found.get(key).cloned().flatten();
            if let Some(old) = users.ids.get(&id) {
                if user.as_ref() != Some(old) {
                    users.moved.push((id, key.to_string(), old.clone()));
                }
            }
            if user.is_some() {
                users.accounts.insert(id);
            }
            save.push((key.to_string(), value.to_string(), user.clone()));
            users.set(id, user);
        }
        if !self.options.dry_run {
            self.store
                .save_target_users(self.name, &save, &users.moved, &self.now)
                .await?;
        }
        Ok(users)
    }

    /// Looks `workers` up again, whatever the cache says, after the target refused a request
    /// that added them: the users as they are now when any of their ids changed (or is
    /// gone), stored with the old ids moved out of the sets; `None` when none did, and the
    /// refusal was about something else.
    pub(super) async fn recheck(
        &self,
        users: &Users,
        workers: &[u32],
    ) -> Result<Option<Users>, Stop> {
        let numbering = &self.desired.workers;
        let todo: Vec<(u32, &str, &str)> = workers
            .iter()
            .filter_map(|&id| Some((id, numbering.key(id)?, self.match_value(id)?)))
            .collect();
        if todo.is_empty() {
            return Ok(None);
        }
        let (found, _) = self.look_up_workers(&todo).await?;
        self.evidence
            .confirm(&todo.iter().map(|(id, _, _)| *id).collect());
        let mut fresh: Option<Users> = None;
        let mut save = Vec::new();
        for (id, key, value) in todo {
            let user = found.get(key).cloned().flatten();
            if user.as_ref() == users.ids.get(&id) {
                continue;
            }
            let fresh = fresh.get_or_insert_with(|| Users {
                moved: Vec::new(),
                ..users.clone()
            });
            if let Some(old) = fresh.ids.get(&id) {
                fresh.moved.push((id, key.to_string(), old.clone()));
            }
            if user.is_some() {
                fresh.accounts.insert(id);
            } else {
                fresh.accounts.remove(id);
            }
            save.push((key.to_string(), value.to_string(), user.clone()));
            fresh.set(id, user);
        }
        if let Some(fresh) = &fresh {
            tracing::info!(
                target_name = self.name,
                workers = save.len(),
                "the target refused user ids it no longer knows; looked the workers up again"
            );
            self.evidence.reset(format!(
                "target `{}`: it refused cached user ids of {} workers, whose users have new ids now",
                self.name,
                save.len()
            ));
            if !self.options.dry_run {
                self.store
                    .save_target_users(self.name, &save, &fresh.moved, &self.now)
                    .await?;
            }
        }
        Ok(fresh)
    }

    /// Looks `todo` (worker id, key, match value) up in the target: by listing its users or
    /// by filters, as [`TargetRun::look_up`] decides with what is known of its filters.
    async fn look_up_workers(&self, todo: &[(u32, &str, &str)]) -> Result<Found, Stop> {
        let pairs: Vec<(&str, &str)> = todo.iter().map(|(_, k, v)| (*k, *v)).collect();
        // A reconcile lists the users whatever the filters do.
        let exact = self.config.user_match.lookup == UserLookup::Auto
            && !self.reconcile
            && !self.target.search_ignores_case()
            && self.filters_case_exact().await?;
        let found = self.look_up(&pairs, exact).await.map_err(Stop::Target)?;
        if let Some(all) = &found.1 {
            self.listed(all.len()).await?;
        }
        Ok(found)
    }

    fn fresh(&self, cached: &CachedUser, value: &str) -> bool {
        let ttl = if cached.user_id.is_some() {
            self.config.user_cache_seconds
        } else {
            self.config.unresolved_retry_seconds
        };
        cached.match_value.eq_ignore_ascii_case(value)
            && self.checked_within(&cached.checked_at, ttl)
    }

    /// Whether `checked_at` (RFC 3339) is less than `seconds` ago.
    fn checked_within(&self, checked_at: &str, seconds: u64) -> bool {
        chrono::DateTime::parse_from_rfc3339(checked_at).is_ok_and(|t| {
            let age = (self.now_time - t.with_timezone(&chrono::Utc)).num_seconds();
            age >= 0 && (age as u64) < seconds
        })
    }

    /// Whether the target's filters compare the match attribute case-sensitively, for
    /// `lookup: auto`: what was learned before while it is fresh (`user_cache_seconds`), else
    /// learned now and stored. A target that cannot tell (no user to probe with) is taken
    /// to be case-sensitive, which only costs listing its users.
    async fn filters_case_exact(&self) -> Result<bool, Stop> {
        let attribute = self.config.user_attribute();
        let known = self.store.target_lookups().await?.remove(self.name);
        if let Some(known) = known.filter(|k| {
            k.attribute == attribute
                && self.checked_within(&k.checked_at, self.config.user_cache_seconds)
        }) {
            return Ok(known.case_exact);
        }
        let Some((case_exact, source)) = self.learn_case().await.map_err(Stop::Target)? else {
            return Ok(true);
        };
        tracing::info!(
            target_name = self.name,
            attribute,
            case_exact,
            source,
            "learned how the target's filters compare the match attribute"
        );
        if !self.options.dry_run {
            let lookup = TargetLookup {
                target: self.name.to_string(),
                attribute: attribute.to_string(),
                case_exact,
                source: source.to_string(),
                checked_at: self.now.clone(),
            };
            self.store.set_target_lookup(&lookup).await?;
        }
        Ok(case_exact)
    }

    /// How the target compares the match attribute: one probe (a user's value in another
    /// case, looked up with a filter), checked against what its /Schemas' `caseExact`
    /// says. A description that says case-sensitive is believed without a probe (it costs
    /// only listing); one that says case-insensitive is believed only when the probe
    /// agrees, as some targets publish `caseExact: false` and filter case-sensitively.
    /// `None` when the target describes nothing and has no value to probe with.
    async fn learn_case(&self) -> Result<Option<(bool, &'static str)>, TargetError> {
        let attribute = self.config.user_attribute();
        let said = match self.target.user_schema().await? {
            Some(schema) => case_exact_in(&schema, attribute),
            None => None,
        };
        if said == Some(true) {
            return Ok(Some((true, "schemas")));
        }
        Ok(match (said, self.probe_case().await?) {
            (Some(false), Some(false)) => Some((false, "schemas")),
            (Some(false), Some(true)) => {
                tracing::warn!(
                    target_name = self.name,
                    attribute,
                    "the target's /Schemas says its filters ignore case, but a probe found they do not; its users are listed"
                );
                Some((true, SCHEMAS_WRONG))
            }
            // Nothing to probe with: its word, for now.
            (Some(false), None) => Some((false, "schemas")),
            (_, Some(exact)) => Some((exact, "probe")),
            (_, None) => None,
        })
    }

    /// Whether a filter on a user's value in swapped case misses that user; `None` when no
    /// listed user has a value with letters.
    async fn probe_case(&self) -> Result<Option<bool>, TargetError> {
        let attribute = self.config.user_attribute();
        let page = self
            .target
            .list_users(None, self.config.page_size, attribute)
            .await?;
        for user in &page.users {
            for value in &user.values {
                let other = swap_case(value);
                if other == *value {
                    continue;
                }
                let found = self.target.find_users(attribute, &other).await?;
                let exact = !found.iter().any(|u| u.id == user.id);
                return Ok(Some(exact));
            }
        }
        Ok(None)
    }

    async fn look_up(&self, todo: &[(&str, &str)], exact: bool) -> Result<Found, TargetError> {
        let attribute = self.config.user_attribute();
        let page_size = self.config.page_size;
        // Filters that compare case-sensitively would miss a user whose value differs from
        // the worker's in case only: such a target's users are listed and matched here.
        let always_list = self.config.user_match.lookup == UserLookup::List || exact;
        let list = match self.config.user_match.lookup {
            UserLookup::Filter => false,
            UserLookup::List => true,
            UserLookup::Auto => exact || todo.len() >= FILTER_ALWAYS_BELOW || self.reconcile,
        };
        if list {
            let first = self.target.list_users(None, page_size, attribute).await?;
            // Listing costs `pages` requests (one made); filters cost one per worker. A
            // target that does not say how many users it has is listed for at most as many
            // pages as there are workers to look up, so that listing never costs more
            // than twice the filters would.
            let (cheaper, budget) = match first.total {
                Some(total) => (
                    total.div_ceil(page_size.max(1)) as usize <= todo.len(),
                    self.config.max_list_pages,
                ),
                None => (
                    true,
                    self.config.max_list_pages.min(todo.len().max(1) as u64),
                ),
            };
            if always_list || cheaper || self.reconcile {
                let budget = if always_list || self.reconcile {
                    self.config.max_list_pages
                } else {
                    budget
                };
                if let Some((index, ids_seen)) = self.index_users(first, attribute, budget).await? {
                    let found = todo
                        .iter()
                        .map(|(key, value)| {
                            let ids = index.get(&value.to_lowercase());
                            (
                                key.to_string(),
                                unique(self.name, key, ids.map(Vec::as_slice)),
                            )
                        })
                        .collect();
                    return Ok((found, Some(ids_seen)));
                }
            }
        }
        let lookups = futures_util::stream::iter(todo.iter().map(|(key, value)| async move {
            let users = self.target.find_users(attribute, value).await?;
            let ids: Vec<String> = users
                .into_iter()
                .filter(|u| u.values.iter().any(|v| v.eq_ignore_ascii_case(value)))
                .map(|u| u.id)
                .collect();
            Ok::<_, TargetError>((key.to_string(), unique(self.name, key, Some(&ids))))
        }))
        .buffer_unordered(self.config.concurrency);
        let results: Vec<_> = lookups.collect().await;
        Ok((results.into_iter().collect::<Result<_, _>>()?, None))
    }

    /// Every user the target lists, from its `first` page on: their ids by the lowercased
    /// values of `attribute`, and every id seen. `None` when the listing stopped short (a
    /// limit, or a page of users already listed): the workers are then looked up one by one.
    async fn index_users(
        &self,
        first: UserPage,
        attribute: &str,
        max_pages: u64,
    ) -> Result<Option<(HashMap<String, Vec<String>>, HashSet<String>)>, TargetError> {
        let page_size = self.config.page_size;
        let mut index: HashMap<String, Vec<String>> = HashMap::new();
        // Whether a page brought any user not seen before: a target that serves the
        // same page again and again is read no further.
        let mut ids_seen: HashSet<String> = HashSet::new();
        let mut add = |users: &[FoundUser]| {
            let mut new = false;
            for user in users {
                new |= ids_seen.insert(user.id.clone());
                for value in &user.values {
                    index
                        .entry(value.to_lowercase())
                        .or_default()
                        .push(user.id.clone());
                }
            }
            new
        };
        add(&first.users);
        let mut seen = first.listed;
        let mut next = first.next;
        // Read until the promised total, an empty page, a page of users already seen,
        // or the configured most: a target whose `totalResults` lies is not read
        // forever.
        let most = self.config.max_listed_users;
        let listing = std::time::Instant::now();
        let deadline = std::time::Duration::from_secs(self.config.list_deadline_seconds);
        let mut pages = 1;
        let mut complete = true;
        while let Some(from) = next.take() {
            let stop = if seen >= most {
                Some("max_listed_users")
            } else if pages >= max_pages {
                Some(if max_pages < self.config.max_list_pages {
                    "as many pages as workers to look up"
                } else {
                    "max_list_pages"
                })
            } else if listing.elapsed() >= deadline {
                Some("list_deadline_seconds")
            } else {
                None
            };
            if let Some(limit) = stop {
                complete = false;
                tracing::warn!(
                    target_name = self.name,
                    total_results = first.total,
                    read = seen,
                    pages,
                    "stopped listing users at {limit}; the workers are looked up one by one"
                );
                break;
            }
            pages += 1;
            let page = self
                .target
                .list_users(Some(&from), page_size, attribute)
                .await?;
            if page.listed == 0 {
                break;
            }
            if !add(&page.users) {
                complete = false;
                tracing::warn!(
                    target_name = self.name,
                    from,
                    total_results = first.total,
                    "the target served a page of users already listed; stopped listing, the workers are looked up one by one"
                );
                break;
            }
            seen += page.listed;
            next = page.next;
        }
        Ok(complete.then_some((index, ids_seen)))
    }
}

/// The one matching user; several are as bad as none, and say so in the log.
fn unique(target: &str, key: &str, ids: Option<&[String]>) -> Option<String> {
    match ids {
        Some([id]) => Some(id.clone()),
        Some(ids) if ids.len() > 1 => {
            tracing::warn!(
                target_name = target,
                worker = key,
                matches = ids.len(),
                "several target users match the worker; none is used"
            );
            None
        }
        _ => None,
    }
}

/// The `caseExact` a User schema gives the attribute at `path` (`userName`, `emails.value`;
/// a complex attribute's `value` when no sub-attribute is named); `None` when it says
/// nothing.
fn case_exact_in(schema: &serde_json::Value, path: &str) -> Option<bool> {
    let named = |attrs: &serde_json::Value, name: &str| {
        attrs
            .as_array()?
            .iter()
            .find(|a| {
                a["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .cloned()
    };
    let (head, sub) = match path.split_once('.') {
        Some((head, sub)) => (head, Some(sub)),
        None => (path, None),
    };
    let attr = named(&schema["attributes"], head)?;
    let attr = match (sub, attr["subAttributes"].is_array()) {
        (Some(sub), _) => named(&attr["subAttributes"], sub)?,
        (None, true) => named(&attr["subAttributes"], "value")?,
        (None, false) => attr,
    };
    attr["caseExact"].as_bool()
}

/// `Ada@Example.com` → `aDA@eXAMPLE.COM`.
fn swap_case(value: &str) -> String {
    value
        .chars()
        .flat_map(|c| {
            let swapped: Vec<char> = if c.is_lowercase() {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            swapped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_exact_is_read_for_simple_and_sub_attributes() {
        let schema = json!({"attributes": [
            {"name": "userName", "type": "string", "caseExact": true},
            {"name": "emails", "type": "complex", "subAttributes": [
                {"name": "value", "caseExact": false}, {"name": "type"}
            ]},
            {"name": "externalId"}
        ]});
        assert_eq!(case_exact_in(&schema, "USERNAME"), Some(true));
        assert_eq!(case_exact_in(&schema, "emails.value"), Some(false));
        assert_eq!(case_exact_in(&schema, "emails"), Some(false));
        assert_eq!(case_exact_in(&schema, "emails.type"), None, "not said");
        assert_eq!(case_exact_in(&schema, "externalId"), None);
        assert_eq!(case_exact_in(&schema, "nickName"), None);
    }

    #[test]
    fn swapping_case_changes_every_letter() {
        assert_eq!(
            swap_case("Ada.Lovelace@Example.com"),
            "aDA.lOVELACE@eXAMPLE.COM"
        );
        assert_eq!(swap_case("1234"), "1234");
    }
}
