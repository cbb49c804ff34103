//! `/Users`: create, replace, patch and delete.

use super::*;

/// Refuses a userName another user has (compared as the tenant compares userNames).
pub(super) fn check_user_name(
    t: &Tenant,
    attrs: &Map<String, Value>,
    except: Option<&str>,
) -> Result<(), Answer> {
    let name = attrs["userName"].as_str().unwrap_or_default();
    match t.user_named(name, except) {
        Some(_) => Err(error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("userName `{name}` is taken"),
        )),
        None => Ok(()),
    }
}

pub(super) fn user_answer(t: &Tenant, status: StatusCode, id: &str) -> Served {
    Ok((status, t.users.get(id).cloned()))
}

pub(super) fn create_user(t: &mut Tenant, body: &[u8]) -> Served {
    let attrs = resource::normalise(Kind::Users, &parse_body(body)?, true)?;
    check_user_name(t, &attrs, None)?;
    let id = t.new_id('u');
    t.put_user(&id, attrs, None);
    user_answer(t, StatusCode::CREATED, &id)
}

pub(super) fn put_user(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let attrs = resource::normalise(Kind::Users, &parse_body(body)?, true)?;
    let (_, created) = t.user_attrs(id).ok_or_else(|| not_found("User", id))?;
    check_user_name(t, &attrs, Some(id))?;
    t.put_user(id, attrs, Some(&created));
    user_answer(t, StatusCode::OK, id)
}

pub(super) fn patch_user(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let patch: PatchRequest = parse_body(body)?;
    let (mut attrs, created) = t.user_attrs(id).ok_or_else(|| not_found("User", id))?;
    for op in &patch.operations {
        resource::patch(
            Kind::Users,
            &mut attrs,
            &op.op,
            op.path.as_deref(),
            op.value.as_ref(),
        )?;
    }
    check_user_name(t, &attrs, Some(id))?;
    t.put_user(id, attrs, Some(&created));
    user_answer(t, StatusCode::OK, id)
}

/// Deletes a user. Its groups lose it, unless [`Quirks::accept_unknown_members`] keeps its
/// id in them as the servers that accept unknown ids do.
pub(super) fn delete_user(t: &mut Tenant, id: &str) -> Served {
    t.users.remove(id).ok_or_else(|| not_found("User", id))?;
    if !t.quirks.accept_unknown_members {
        for g in t.groups.values_mut() {
            g.members.remove(id);
            g.extra.remove(id);
        }
    }
    Ok((StatusCode::NO_CONTENT, None))
}
