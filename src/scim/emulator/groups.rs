//! `/Groups`: create, replace and RFC 7644 PATCH of members (filtered paths included), with
//! the quirks real targets have.

use super::*;

pub(super) fn member_ids(t: &Tenant, value: &Value) -> Result<Vec<String>, Answer> {
    let members: Vec<Member> = serde_json::from_value(value.clone()).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            format!("members: {e}"),
        )
    })?;
    members
        .into_iter()
        .map(|m| {
            if t.users.contains_key(&m.value) || t.quirks.accept_unknown_members {
                Ok(m.value)
            } else {
                Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    format!("no user with id `{}`", m.value),
                ))
            }
        })
        .collect()
}

pub(super) fn check_cap(t: &Tenant, changes: usize) -> Result<(), Answer> {
    match t.quirks.max_members_per_request {
        Some(cap) if changes > cap => Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            format!("{changes} member changes in one request; at most {cap} are allowed"),
        )),
        _ => Ok(()),
    }
}

/// A group's body: its displayName, its other attributes and its members' ids.
pub(super) struct GroupBody {
    name: String,
    attrs: Map<String, Value>,
    members: Vec<String>,
}

pub(super) fn group_body(t: &Tenant, body: &[u8]) -> Result<GroupBody, Answer> {
    let mut attrs = resource::normalise(Kind::Groups, &parse_body(body)?, true)?;
    let members = match attrs.remove("members") {
        Some(members) => member_ids(t, &members)?,
        None => Vec::new(),
    };
    let name = match attrs.remove("displayName") {
        Some(Value::String(name)) => name,
        _ => unreachable!("normalise requires a string displayName"),
    };
    Ok(GroupBody {
        name,
        attrs,
        members,
    })
}

pub(super) fn create_group(t: &mut Tenant, body: &[u8]) -> Served {
    let GroupBody {
        name,
        attrs,
        members,
    } = group_body(t, body)?;
    if t.quirks.unique_display_names && t.groups.values().any(|g| g.display_name == name) {
        return Err(error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("a group named `{name}` exists"),
        ));
    }
    check_cap(t, members.len())?;
    t.counters.members_added += members.len() as u64;
    let id = t.new_id('g');
    let meta = t.touch(None);
    let mut g = EmuGroup::new(name, members.into_iter().collect(), meta);
    g.attrs = attrs;
    let answer = t.group_json(&id, &g, &Projection::default());
    t.groups.insert(id, g);
    Ok((StatusCode::CREATED, Some(answer)))
}

pub(super) fn put_group(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let GroupBody {
        name,
        attrs,
        members,
    } = group_body(t, body)?;
    let created = match t.groups.get(id) {
        Some(g) => g.meta.created.clone(),
        None => return Err(not_found("Group", id)),
    };
    let meta = t.touch(Some(&created));
    t.counters.member_list_replaces += 1;
    let mut g = EmuGroup::new(name, members.into_iter().collect(), meta);
    g.attrs = attrs;
    let answer = t.group_json(id, &g, &Projection::default());
    t.groups.insert(id.to_string(), g);
    Ok((StatusCode::OK, Some(answer)))
}

pub(super) fn patch_group(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let patch: PatchRequest = parse_body(body)?;
    // Taken out while the operations apply, which read the tenant's users.
    let mut group = t.groups.remove(id).ok_or_else(|| not_found("Group", id))?;
    // All operations apply, or none (RFC 7644 section 3.5.2): the edit journals what it
    // changes, so a PATCH costs its own changes, not the group's size.
    let mut edit = Edit::new(&mut group);
    let mut changes = 0usize;
    let mut replaces = 0u64;
    let mut result = Ok(());
    for op in &patch.operations {
        result = apply(t, &mut edit, op, &mut changes, &mut replaces);
        if result.is_err() {
            break;
        }
    }
    let result = result.and_then(|()| check_cap(t, changes));
    let (added, removed) = (edit.added.len() as u64, edit.removed.len() as u64);
    if result.is_err() {
        edit.undo();
    } else {
        group.meta = t.touch(Some(&group.meta.created));
    }
    t.groups.insert(id.to_string(), group);
    result?;
    t.counters.members_added += added;
    t.counters.members_removed += removed;
    t.counters.member_list_replaces += replaces;
    Ok((StatusCode::NO_CONTENT, None))
}

/// A group being changed by one PATCH, with what it takes to undo the change.
pub(super) struct Edit<'g> {
    group: &'g mut EmuGroup,
    /// The displayName and other attributes before the first change to them.
    attrs: Option<(String, Map<String, Value>)>,
    /// Members that were not there before, and members that were and are gone.
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
}

impl<'g> Edit<'g> {
    fn new(group: &'g mut EmuGroup) -> Self {
        Edit {
            group,
            attrs: None,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// Applies an operation to the attributes other than `members`.
    fn patch_attrs(
        &mut self,
        op: &str,
        path: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), Answer> {
        let g = &mut *self.group;
        self.attrs
            .get_or_insert_with(|| (g.display_name.clone(), g.attrs.clone()));
        let mut doc = g.attrs.clone();
        doc.insert("displayName".into(), json!(g.display_name));
        resource::patch(Kind::Groups, &mut doc, op, path, value)?;
        if let Some(Value::String(name)) = doc.remove("displayName") {
            g.display_name = name;
        }
        g.attrs = doc;
        Ok(())
    }

    fn add(&mut self, id: String) {
        if self.group.members.insert(id.clone()) && !self.removed.remove(&id) {
            self.added.insert(id);
        }
    }

    fn remove(&mut self, id: &str) {
        self.group.extra.remove(id);
        if self.group.members.remove(id) && !self.added.remove(id) {
            self.removed.insert(id.to_string());
        }
    }

    fn clear(&mut self) {
        self.group.extra.clear();
        for id in std::mem::take(&mut self.group.members) {
            if !self.added.remove(&id) {
                self.removed.insert(id);
            }
        }
    }

    /// Puts the group back as it was.
    fn undo(&mut self) {
        if let Some((name, attrs)) = self.attrs.take() {
            self.group.display_name = name;
            self.group.attrs = attrs;
        }
        for id in &self.added {
            self.group.members.remove(id);
        }
        self.group.members.append(&mut self.removed);
    }
}

/// Removes a member; with [`Quirks::strict_removal`], one the group lacks is an error.
pub(super) fn strict_remove(t: &Tenant, group: &mut Edit<'_>, id: &str) -> Result<(), Answer> {
    if t.quirks.strict_removal && !group.group.members.contains(id) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("noTarget"),
            format!("`{id}` is not a member"),
        ));
    }
    group.remove(id);
    Ok(())
}

pub(super) fn apply(
    t: &Tenant,
    group: &mut Edit<'_>,
    op: &PatchOperation,
    changes: &mut usize,
    replaces: &mut u64,
) -> Result<(), Answer> {
    let invalid_path = |detail: String| error(StatusCode::BAD_REQUEST, Some("invalidPath"), detail);
    let kind = op.op.to_ascii_lowercase();
    let path = op
        .path
        .as_deref()
        .map(|p| schema::strip_urn(Kind::Groups, p.trim()))
        .filter(|p| !p.is_empty());
    let value = op.value.clone().unwrap_or(Value::Null);
    match (kind.as_str(), path) {
        ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
            let ids = member_ids(t, &value)?;
            *changes += ids.len();
            for id in ids {
                if t.quirks.duplicate_on_add && group.group.members.contains(&id) {
                    // Not undone with the rest of a failed PATCH: such servers are not
                    // careful either.
                    *group.group.extra.entry(id).or_default() += 1;
                } else {
                    group.add(id);
                }
            }
        }
        ("add" | "replace", None) => {
            let mut rest = value.as_object().cloned().unwrap_or_default();
            let members = rest
                .keys()
                .find(|k| k.eq_ignore_ascii_case("members"))
                .cloned()
                .and_then(|k| rest.remove(&k));
            if let Some(members) = members {
                let ids = member_ids(t, &members)?;
                *changes += ids.len();
                if kind == "replace" {
                    *replaces += 1;
                    group.clear();
                }
                ids.into_iter().for_each(|id| group.add(id));
            }
            if !rest.is_empty() || !value.is_object() {
                group.patch_attrs(&kind, None, Some(&Value::Object(rest)))?;
            }
        }
        ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
            let ids = member_ids(t, &value)?;
            *changes += ids.len();
            *replaces += 1;
            group.clear();
            ids.into_iter().for_each(|id| group.add(id));
        }
        ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
            if value.is_null() {
                *replaces += 1;
                group.clear();
            } else if t.quirks.value_list_removal {
                let members: Vec<Member> = serde_json::from_value(value).map_err(|e| {
                    error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidValue"),
                        format!("members: {e}"),
                    )
                })?;
                *changes += members.len();
                for m in members {
                    strict_remove(t, group, &m.value)?;
                }
            } else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    "a remove operation carries no value; a filter in the path selects what to remove",
                ));
            }
        }
        ("remove", Some(p)) if p.to_ascii_lowercase().starts_with("members[") => {
            if t.quirks.no_filtered_paths {
                return Err(invalid_path(format!(
                    "filtered paths are not supported: `{p}`"
                )));
            }
            let inner = p
                .get("members[".len()..p.len().saturating_sub(1))
                .filter(|_| p.ends_with(']'))
                .ok_or_else(|| invalid_path(format!("cannot read path `{p}`")))?;
            let (attr, id) = match parse_filter(inner).map_err(invalid_path)?.as_slice() {
                [(attr, id)] => (attr.clone(), id.clone()),
                _ => {
                    return Err(invalid_path(format!(
                        "one member at a time is selected: `{p}`"
                    )))
                }
            };
            if !attr.eq_ignore_ascii_case("value") {
                return Err(invalid_path(format!(
                    "members can be selected by `value` only: `{p}`"
                )));
            }
            *changes += 1;
            strict_remove(t, group, &id)?;
        }
        (_, Some(p)) if p.to_ascii_lowercase().starts_with("members") => {
            return Err(invalid_path(format!(
                "unsupported operation `{}` on `{p}`",
                op.op
            )))
        }
        _ => group.patch_attrs(&kind, path, op.value.as_ref())?,
    }
    Ok(())
}
