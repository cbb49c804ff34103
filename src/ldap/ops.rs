//! The reads and changes a push asks of a directory: groups found by `cn` under the group
//! base and known by their `entryUUID` (`objectGUID`), members read whole (with Active
//! Directory's range retrieval for groups over its limit), added and deleted in modify
//! requests of `ldap.batch_size` values, renamed by `modrdn`; users searched by an
//! attribute under the user base, listed with the paged-results control.

use std::collections::HashSet;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Mod, Scope, SearchEntry};

use super::dn;
use super::Client;
use crate::config::LdapFlavor;
use crate::http::client::TargetError;

/// A group as the directory holds it.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// Its members under the user base, normalized.
    pub members: Vec<String>,
    /// Its members elsewhere (nested groups, accounts outside the user base): kept.
    pub kept: Vec<String>,
}

/// A user: its DN (normalized), and its values of the attribute users are matched by.
#[derive(Debug, Clone)]
pub struct User {
    pub dn: String,
    pub values: Vec<String>,
}

/// Active Directory's permissive-modify control (`LDAP_SERVER_PERMISSIVE_MODIFY_OID`).
const PERMISSIVE_MODIFY: &str = "1.2.840.113556.1.4.1413";

/// The placeholder a `groupOfNames` keeps so that it is never without a member: the empty
/// DN, which names no entry.
const PLACEHOLDER: &str = "";

impl Client {
    fn member_attribute(&self) -> &'static str {
        self.class.member_attribute()
    }

    /// The entry's id, from its `entryUUID` (text) or `objectGUID` (bytes, as hex).
    fn id_of(&self, entry: &SearchEntry) -> Option<String> {
        let attribute = self.settings.id_attribute();
        match self.settings.flavor {
            LdapFlavor::Openldap => entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
                .and_then(|(_, v)| v.first().cloned()),
            LdapFlavor::ActiveDirectory => entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
                .and_then(|(_, v)| v.first())
                .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }

    /// The filter that finds the entry with the id `id`.
    fn id_filter(&self, id: &str) -> String {
        let attribute = self.settings.id_attribute();
        match self.settings.flavor {
            LdapFlavor::Openldap => format!("({attribute}={})", dn::filter_value(id)),
            LdapFlavor::ActiveDirectory => {
                let bytes: Vec<u8> = (0..id.len() / 2)
                    .filter_map(|i| id.get(2 * i..2 * i + 2))
                    .filter_map(|h| u8::from_str_radix(h, 16).ok())
                    .collect();
                format!("({attribute}={})", dn::filter_bytes(&bytes))
            }
        }
    }

    /// Entries found by one search (all of them: groups and single users are few).
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, TargetError> {
        let (base, filter) = (base.to_string(), filter.to_string());
        self.call("search", &base.clone(), false, move |mut ldap| {
            let (base, filter, attrs) = (base.clone(), filter.clone(), attrs.clone());
            async move {
                let found = ldap.search(&base, scope, &filter, attrs).await?;
                let entries = found.0.into_iter().map(SearchEntry::construct).collect();
                Ok((entries, found.1))
            }
        })
        .await
    }

    /// The entry at `dn` with `attrs`, `None` when there is none.
    async fn read(&self, dn: &str, attrs: Vec<String>) -> Result<Option<SearchEntry>, TargetError> {
        match self.search(dn, Scope::Base, "(objectClass=*)", attrs).await {
            Ok(mut entries) => Ok(entries.pop()),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn group_attrs(&self) -> Vec<String> {
        vec![
            "cn".into(),
            self.settings.id_attribute().into(),
            self.member_request(0),
        ]
    }

    /// The member attribute as a read asks for it: whole, or (Active Directory) the range
    /// of values from `from`.
    fn member_request(&self, from: usize) -> String {
        let attribute = self.member_attribute();
        match self.settings.range_size() {
            None => attribute.to_string(),
            Some(size) => format!("{attribute};range={from}-{}", from + size - 1),
        }
    }

    /// A group entry with every value of its member attribute (reading the ranges Active
    /// Directory hands out one after another).
    async fn group_of(&self, entry: SearchEntry) -> Result<Group, TargetError> {
        let attribute = self.member_attribute();
        let id = self.id_of(&entry).ok_or_else(|| TargetError::Decode {
            target: self.target.clone(),
            method: "search".into(),
            path: entry.dn.clone(),
            message: format!("the group has no `{}`", self.settings.id_attribute()),
        })?;
        let mut values: Vec<String> = Vec::new();
        let mut next = take_values(&entry, attribute, &mut values);
        while let Some(from) = next {
            let Some(more) = self
                .read(&entry.dn, vec![self.member_request(from)])
                .await?
            else {
                break;
            };
            next = take_values(&more, attribute, &mut values);
        }
        let name = first(&entry, "cn").unwrap_or_default();
        let (mut members, mut kept) = (Vec::new(), Vec::new());
        for value in values.iter().filter(|v| v.as_str() != PLACEHOLDER) {
            let normal = dn::normalize(value);
            if dn::is_under(&normal, &self.user_base) {
                members.push(normal);
            } else {
                kept.push(value.clone());
            }
        }
        crate::locks::lock(&self.dns).insert(id.clone(), entry.dn.clone());
        Ok(Group {
            id,
            name,
            members,
            kept,
        })
    }

    /// The groups of the configured class named `name` (their `cn`) under the group base.
    pub async fn find_groups(&self, name: &str) -> Result<Vec<Group>, TargetError> {
        let filter = format!(
            "(&(objectClass={})(cn={}))",
            self.class.object_class(),
            dn::filter_value(name)
        );
        let base = self.settings.group_base.clone();
        let mut out = Vec::new();
        for entry in self
            .search(&base, Scope::Subtree, &filter, self.group_attrs())
            .await?
        {
            // `cn` matches without case; a group is the one named exactly so.
            let group = self.group_of(entry).await?;
            if group.name == name {
                out.push(group);
            }
        }
        Ok(out)
    }

    /// The DN of the group `id`: as last seen; else from a listing of every group under the
    /// group base (once a run); else searched for by its id.
    pub async fn dn_of(&self, id: &str) -> Result<Option<String>, TargetError> {
        if let Some(dn) = crate::locks::lock(&self.dns).get(id).cloned() {
            return Ok(Some(dn));
        }
        if self.listed.get().is_none() {
            self.listed.get_or_try_init(|| self.list_groups()).await?;
            if let Some(dn) = crate::locks::lock(&self.dns).get(id).cloned() {
                return Ok(Some(dn));
            }
        }
        let base = self.settings.group_base.clone();
        let found = self
            .search(
                &base,
                Scope::Subtree,
                &self.id_filter(id),
                vec!["1.1".into()],
            )
            .await?;
        let dn = found.into_iter().next().map(|e| e.dn);
        if let Some(dn) = &dn {
            crate::locks::lock(&self.dns).insert(id.to_string(), dn.clone());
        }
        Ok(dn)
    }

    /// Every entry under `base` that `filter` takes, with `attrs`, in pages of `page_size`
    /// on one connection, within `list_deadline_seconds`; counted as the requests it took.
    async fn list(
        &self,
        base: String,
        filter: String,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, TargetError> {
        let page_size = self.page_size;
        let entries = self
            .call_within(
                self.list_timeout,
                "search",
                &base.clone(),
                false,
                move |mut ldap| {
                    let (base, filter, attrs) = (base.clone(), filter.clone(), attrs.clone());
                    async move { paged(&mut ldap, page_size, &base, &filter, attrs).await }
                },
            )
            .await?;
        // The pages after the first, which `call_within` counted.
        let pages = (entries.len() as u64).div_ceil(page_size.max(1) as u64);
        self.stats().reads.fetch_add(
            pages.saturating_sub(1),
            std::sync::atomic::Ordering::Relaxed,
        );
        crate::http::client::note_sent(pages.saturating_sub(1));
        Ok(entries)
    }

    /// Every group of the configured class under the group base, into `dns`: their ids and
    /// DNs only, in pages.
    async fn list_groups(&self) -> Result<(), TargetError> {
        let base = self.settings.group_base.clone();
        let filter = format!("(objectClass={})", self.class.object_class());
        let attrs = vec![self.settings.id_attribute().to_string()];
        let entries = self.list(base, filter, attrs).await?;
        let mut dns = crate::locks::lock(&self.dns);
        for entry in entries {
            if let Some(id) = self.id_of(&entry) {
                dns.entry(id).or_insert(entry.dn);
            }
        }
        Ok(())
    }

    /// The group `id` with its members; `None` when the directory does not have it. One
    /// read: at the DN it was last seen at, or else a search for its id.
    pub async fn read_group(&self, id: &str) -> Result<Option<Group>, TargetError> {
        let cached = crate::locks::lock(&self.dns).get(id).cloned();
        if let Some(dn) = cached {
            if let Some(entry) = self.read(&dn, self.group_attrs()).await? {
                if self.id_of(&entry).as_deref() == Some(id) {
                    return Ok(Some(self.group_of(entry).await?));
                }
            }
            // Moved or renamed since it was last seen: look for it by its id.
            crate::locks::lock(&self.dns).remove(id);
        }
        let base = self.settings.group_base.clone();
        match self
            .search(
                &base,
                Scope::Subtree,
                &self.id_filter(id),
                self.group_attrs(),
            )
            .await?
            .into_iter()
            .next()
        {
            Some(entry) => Ok(Some(self.group_of(entry).await?)),
            None => Ok(None),
        }
    }

    /// The DN a group named `name` is made at.
    pub fn dn_for(&self, name: &str) -> String {
        format!("{},{}", dn::cn(name), self.settings.group_base)
    }

    /// Makes the group `name` holding `members` (at most `ldap.batch_size`), described
    /// `description`: the group as the directory then holds it.
    pub async fn create_group(
        &self,
        name: &str,
        description: &str,
        members: &[String],
    ) -> Result<Group, TargetError> {
        let dn = self.dn_for(name);
        let mut values: HashSet<String> = members.iter().cloned().collect();
        if self.class.needs_a_member() {
            values.insert(PLACEHOLDER.to_string());
        }
        let mut attrs: Vec<(String, HashSet<String>)> = vec![
            ("objectClass".into(), one(self.class.object_class())),
            ("cn".into(), one(name)),
            ("description".into(), one(description)),
        ];
        if self.settings.flavor == LdapFlavor::ActiveDirectory {
            attrs.push(("sAMAccountName".into(), one(&sam_account_name(name))));
        }
        if !values.is_empty() {
            attrs.push((self.member_attribute().into(), values));
        }
        self.call("add", &dn.clone(), true, move |mut ldap| {
            let (dn, attrs) = (dn.clone(), attrs.clone());
            async move { Ok(((), ldap.add(&dn, attrs).await?)) }
        })
        .await?;
        let dn = self.dn_for(name);
        // Read back: the group as the directory holds it, and its id.
        match self.read(&dn, self.group_attrs()).await? {
            Some(entry) => self.group_of(entry).await,
            None => Err(self.gone(&dn)),
        }
    }

    /// Adds and deletes members of the group `id`. A value added that the group holds
    /// already, or deleted that it does not, fails a whole modify in LDAP: the group is then
    /// read and only what is still wanted sent, so a change sent twice is no harm.
    pub async fn change_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), TargetError> {
        let dn = self.known_dn(id).await?;
        let mut add: Vec<String> = add.to_vec();
        let mut remove: Vec<String> = remove.to_vec();
        let mut placeholder = false;
        for _ in 0..3 {
            match self.modify_members(&dn, &add, &remove, placeholder).await {
                Ok(()) => return Ok(()),
                // 20: a value added is there; 16: a value deleted is not. Active Directory
                // (Samba's too) says 68 for a member added twice and 53 for one deleted
                // twice, the permissive-modify control or not.
                Err(TargetError::Ldap {
                    rc: 20 | 16 | 68 | 53,
                    ..
                }) => {
                    let Some(group) = self.read_group(id).await? else {
                        return Err(self.gone(&dn));
                    };
                    let held: HashSet<&String> = group.members.iter().collect();
                    add.retain(|m| !held.contains(m));
                    remove.retain(|m| held.contains(m));
                }
                // 32 for a group that is there: a member's DN names no entry (Active
                // Directory checks); the push looks those workers up again.
                Err(e @ TargetError::Ldap { rc: 32, .. }) if !add.is_empty() => {
                    if self.read_group(id).await?.is_none() {
                        return Err(e);
                    }
                    return Err(self.member_unknown(&dn, &e));
                }
                // 65: the last member of a `groupOfNames` went with no placeholder left.
                Err(TargetError::Ldap { rc: 65, .. })
                    if !placeholder && self.class.needs_a_member() =>
                {
                    placeholder = true;
                }
                Err(e) => return Err(e),
            }
            if add.is_empty() && remove.is_empty() {
                return Ok(());
            }
        }
        self.modify_members(&dn, &add, &remove, placeholder).await
    }

    async fn modify_members(
        &self,
        dn: &str,
        add: &[String],
        remove: &[String],
        placeholder: bool,
    ) -> Result<(), TargetError> {
        let attribute = self.member_attribute().to_string();
        let mut mods: Vec<Mod<String>> = Vec::new();
        let mut added: HashSet<String> = add.iter().cloned().collect();
        if placeholder {
            added.insert(PLACEHOLDER.into());
        }
        if !added.is_empty() {
            mods.push(Mod::Add(attribute.clone(), added));
        }
        if !remove.is_empty() {
            mods.push(Mod::Delete(attribute, remove.iter().cloned().collect()));
        }
        if mods.is_empty() {
            return Ok(());
        }
        let dn = dn.to_string();
        // Active Directory refuses a member added twice or removed when absent unless told
        // to let it pass (the permissive-modify control); OpenLDAP has no such control.
        let permissive = self.settings.flavor == LdapFlavor::ActiveDirectory;
        self.call("modify", &dn.clone(), true, move |mut ldap| {
            let (dn, mods) = (dn.clone(), mods.clone());
            async move {
                if permissive {
                    ldap.with_controls(RawControl {
                        ctype: PERMISSIVE_MODIFY.into(),
                        crit: false,
                        val: None,
                    });
                }
                Ok(((), ldap.modify(&dn, mods).await?))
            }
        })
        .await
    }

    /// The DN of a group the push knows by `id`: an error the push reads as "the group is
    /// gone" when the directory has none.
    async fn known_dn(&self, id: &str) -> Result<String, TargetError> {
        self.dn_of(id).await?.ok_or_else(|| self.gone(id))
    }

    /// A modify refused for a member DN that names no entry: a refusal of the request (not
    /// of the group), which the push answers by looking the workers up again.
    fn member_unknown(&self, dn: &str, e: &TargetError) -> TargetError {
        TargetError::Ldap {
            target: self.target.clone(),
            operation: "modify".into(),
            dn: dn.to_string(),
            rc: 32,
            name: dn::result_name(32).into(),
            message: format!(
                "a member's DN names no entry ({})",
                e.detail().unwrap_or("the directory said no more")
            ),
            class: 400,
        }
    }

    fn gone(&self, what: &str) -> TargetError {
        TargetError::Ldap {
            target: self.target.clone(),
            operation: "search".into(),
            dn: what.to_string(),
            rc: 32,
            name: dn::result_name(32).into(),
            message: "no such group under the group base".into(),
            class: 404,
        }
    }

    /// Renames the group `id` to `name` (its `cn`, by `modrdn`); its id stays.
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), TargetError> {
        let old = self.known_dn(id).await?;
        let rdn = dn::cn(name);
        let result = {
            let (old, rdn) = (old.clone(), rdn.clone());
            self.call("modrdn", &old.clone(), true, move |mut ldap| {
                let (old, rdn) = (old.clone(), rdn.clone());
                async move { Ok(((), ldap.modifydn(&old, &rdn, true, None).await?)) }
            })
            .await
        };
        crate::locks::lock(&self.dns).remove(id);
        match result {
            Ok(()) => {}
            // A rename whose answer was lost and was sent again: the group may bear the
            // name already.
            Err(e) if e.status() == Some(404) => match self.read_group(id).await? {
                Some(group) if group.name == name => {}
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Deletes the group `id`; one that is gone already is as wanted.
    pub async fn delete_group(&self, id: &str) -> Result<(), TargetError> {
        let Some(dn) = self.dn_of(id).await? else {
            return Ok(());
        };
        let result = self
            .call("delete", &dn.clone(), true, move |mut ldap| {
                let dn = dn.clone();
                async move { Ok(((), ldap.delete(&dn).await?)) }
            })
            .await;
        crate::locks::lock(&self.dns).remove(id);
        match result {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        }
    }

    // --- Users ----------------------------------------------------------------------------

    fn user_of(&self, entry: SearchEntry, attribute: &str) -> User {
        let values = entry
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(attribute))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        User {
            dn: dn::normalize(&entry.dn),
            values,
        }
    }

    /// The users under the user base whose `attribute` equals `value`, as the directory
    /// compares (without case, for the usual attributes).
    pub async fn find_users(&self, attribute: &str, value: &str) -> Result<Vec<User>, TargetError> {
        let filter = format!(
            "(&{}({attribute}={}))",
            self.settings.user_filter(),
            dn::filter_value(value)
        );
        let base = self.settings.user_base.clone();
        Ok(self
            .search(&base, Scope::Subtree, &filter, vec![attribute.to_string()])
            .await?
            .into_iter()
            .map(|e| self.user_of(e, attribute))
            .collect())
    }

    /// Every user under the user base, read in pages of `page_size` (the paged-results
    /// control, RFC 2696) on one connection.
    pub async fn list_users(&self, attribute: &str) -> Result<Vec<User>, TargetError> {
        let base = self.settings.user_base.clone();
        let filter = self.settings.user_filter().to_string();
        let entries = self.list(base, filter, vec![attribute.to_string()]).await?;
        Ok(entries
            .into_iter()
            .map(|e| self.user_of(e, attribute))
            .collect())
    }

    /// The DNs among `dns` that are users (entries under the user base that the user filter
    /// takes), asked in one search by `entryDN` (Active Directory: `distinguishedName`).
    pub async fn users_among(&self, dns: &[&str]) -> Result<Vec<String>, TargetError> {
        let wanted: Vec<&str> = dns
            .iter()
            .copied()
            .filter(|d| dn::is_under(&dn::normalize(d), &self.user_base))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let attribute = match self.settings.flavor {
            LdapFlavor::Openldap => "entryDN",
            LdapFlavor::ActiveDirectory => "distinguishedName",
        };
        let any: String = wanted
            .iter()
            .map(|d| format!("({attribute}={})", dn::filter_value(d)))
            .collect();
        let filter = format!("(&{}(|{any}))", self.settings.user_filter());
        let base = self.settings.user_base.clone();
        let found: HashSet<String> = self
            .search(&base, Scope::Subtree, &filter, vec!["1.1".into()])
            .await?
            .into_iter()
            .map(|e| dn::normalize(&e.dn))
            .collect();
        Ok(wanted
            .into_iter()
            .filter(|d| found.contains(&dn::normalize(d)))
            .map(str::to_string)
            .collect())
    }

    /// The request a change is, as `--dry-run` shows it.
    pub fn show_members(&self, id: &str, add: &[String], remove: &[String]) -> String {
        let dn = self.shown_dn(id);
        let attribute = self.member_attribute();
        let mut parts = Vec::new();
        if !add.is_empty() {
            parts.push(format!("add {attribute}: {}", add.join("; ")));
        }
        if !remove.is_empty() {
            parts.push(format!("delete {attribute}: {}", remove.join("; ")));
        }
        format!("LDAP modify {dn}: {}", parts.join(" | "))
    }

    /// The DN of the group `id` as last seen, or how it is known.
    pub fn shown_dn(&self, id: &str) -> String {
        crate::locks::lock(&self.dns)
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("(the group {} {id})", self.settings.id_attribute()))
    }

    pub fn class_name(&self) -> &'static str {
        self.class.object_class()
    }

    pub fn batch_size(&self) -> usize {
        self.settings.batch_size
    }
}

/// Every entry a subtree search finds, in pages of `page_size` (the paged-results control,
/// RFC 2696) on one connection.
async fn paged(
    ldap: &mut ldap3::Ldap,
    page_size: i32,
    base: &str,
    filter: &str,
    attrs: Vec<String>,
) -> Result<(Vec<SearchEntry>, ldap3::LdapResult), ldap3::LdapError> {
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
        .await?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await? {
        entries.push(SearchEntry::construct(entry));
    }
    let result = stream.finish().await;
    Ok((entries, result))
}

/// The values of `attribute` the entry holds (whole, or a range of them) added to `values`;
/// where the next range starts, when there is one.
fn take_values(entry: &SearchEntry, attribute: &str, values: &mut Vec<String>) -> Option<usize> {
    let mut next = None;
    for (key, v) in &entry.attrs {
        let (name, options) = key.split_once(';').unwrap_or((key, ""));
        if name.eq_ignore_ascii_case(attribute) {
            values.extend(v.iter().cloned());
            next = range_next(options);
        }
    }
    next
}

/// The first value of an attribute.
fn first(entry: &SearchEntry, attribute: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .and_then(|(_, v)| v.first().cloned())
}

fn one(value: &str) -> HashSet<String> {
    HashSet::from([value.to_string()])
}

/// Where the next range of values starts, from a range option (`range=0-1499`); `None`
/// after the last (`range=1500-*`) or without one.
fn range_next(options: &str) -> Option<usize> {
    let range = options.split(';').find_map(|o| o.strip_prefix("range="))?;
    let (_, end) = range.split_once('-')?;
    end.parse::<usize>().ok().map(|end| end + 1)
}

/// An Active Directory group's pre-Windows 2000 name: the name without the characters AD
/// refuses there, at most 64 characters.
fn sam_account_name(name: &str) -> String {
    name.chars()
        .filter(|c| !"\"/\\[]:;|=,+*?<>@".contains(*c))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_on_until_the_last() {
        assert_eq!(range_next("range=0-1499"), Some(1_500));
        assert_eq!(range_next("range=1500-*"), None);
        assert_eq!(range_next(""), None);
        assert_eq!(sam_account_name("R&D: west/2"), "R&D west2");
    }
}
