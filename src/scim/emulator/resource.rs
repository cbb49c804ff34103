//! A resource's attributes as JSON, kept to its schema: bodies are checked and their names
//! put in the schema's case, RFC 7644 PATCH operations apply to any attribute path
//! (`name`, `name.givenName`, `emails[type eq "work"].value`), and answers are cut down to
//! the `attributes` or `excludedAttributes` asked for.
//!
//! A group's `members` never pass through here: the emulator keeps them as a set, so that a
//! PATCH to a 100,000-member group costs its own changes (see `patch_group`).

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::schema::{Attr, Kind, Mutability, Type};
use super::{error, Answer};

fn invalid_value(detail: String) -> Answer {
    error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
}

fn invalid_path(detail: String) -> Answer {
    error(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
}

fn mutability(detail: String) -> Answer {
    error(StatusCode::BAD_REQUEST, Some("mutability"), detail)
}

/// A request body's attributes, checked against the schema and named as it names them.
/// `id`, `meta`, `schemas` and read-only attributes are the server's and are ignored (RFC
/// 7643 section 7); a null or empty value is an unassigned attribute. With `whole` (POST,
/// PUT) the required attributes must be there.
pub fn normalise(kind: Kind, body: &Value, whole: bool) -> Result<Map<String, Value>, Answer> {
    let Some(body) = body.as_object() else {
        return Err(invalid_value(format!(
            "a {} must be a JSON object",
            kind.resource_type()
        )));
    };
    let mut out = Map::new();
    for (key, v) in body {
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            continue;
        }
        let Some(attr) = kind.find(key) else {
            return Err(invalid_value(format!(
                "`{key}` is not an attribute of a {}",
                kind.resource_type()
            )));
        };
        if attr.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = value(attr, v)? {
            out.insert(attr.name.to_string(), v);
        }
    }
    if whole {
        if let Some(missing) = kind
            .attrs()
            .iter()
            .find(|a| a.required && !out.contains_key(a.name))
        {
            return Err(invalid_value(format!("`{}` is required", missing.name)));
        }
    }
    Ok(out)
}

/// A value for `attr`, checked; `None` for an unassigned one.
fn value(attr: &Attr, v: &Value) -> Result<Option<Value>, Answer> {
    if v.is_null() {
        return Ok(None);
    }
    if !attr.multi {
        return single(attr, v).map(Some);
    }
    let items: Vec<Value> = match v {
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| single(attr, i))
            .collect::<Result<_, _>>()?,
        other => vec![single(attr, other)?],
    };
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

/// One value of `attr` (one element, for a multi-valued attribute).
fn single(attr: &Attr, v: &Value) -> Result<Value, Answer> {
    let wrong =
        |expected: &str| invalid_value(format!("`{}` must be {expected}, not `{v}`", attr.name));
    match attr.kind {
        Type::Complex => {
            let Some(o) = v.as_object() else {
                return Err(wrong("an object"));
            };
            let mut out = Map::new();
            for (key, sv) in o {
                let Some(sub) = attr.find_sub(key) else {
                    return Err(invalid_value(format!(
                        "`{key}` is not a sub-attribute of `{}`",
                        attr.name
                    )));
                };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(sv) = value(sub, sv)? {
                    out.insert(sub.name.to_string(), sv);
                }
            }
            Ok(Value::Object(out))
        }
        Type::Boolean if v.is_boolean() => Ok(v.clone()),
        Type::Boolean => Err(wrong("true or false")),
        Type::Integer if v.is_i64() || v.is_u64() => Ok(v.clone()),
        Type::Integer => Err(wrong("an integer")),
        Type::String | Type::Reference if v.is_string() => Ok(v.clone()),
        Type::String | Type::Reference => Err(wrong("a string")),
    }
}

/// A PATCH path: an attribute, perhaps a filter on its values, perhaps a sub-attribute.
struct Path {
    attr: &'static Attr,
    filter: Option<Filter>,
    sub: Option<&'static Attr>,
}

/// `sub eq value` inside brackets.
struct Filter {
    sub: &'static Attr,
    value: Value,
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let Some(have) = item.get(self.sub.name) else {
            return false;
        };
        match (have, &self.value) {
            (Value::String(a), Value::String(b)) if !self.sub.case_exact => {
                a.eq_ignore_ascii_case(b)
            }
            (a, b) => a == b,
        }
    }
}

fn parse_path(kind: Kind, path: &str) -> Result<Path, Answer> {
    let unknown = || invalid_path(format!("no attribute at path `{path}`"));
    let rest = super::schema::strip_urn(kind, path.trim());
    let (name, filter, sub) = match rest.split_once('[') {
        Some((name, tail)) => {
            let (inner, after) = tail.split_once(']').ok_or_else(unknown)?;
            let sub = match after {
                "" => None,
                s => Some(s.strip_prefix('.').ok_or_else(unknown)?),
            };
            (name, Some(inner), sub)
        }
        None => match rest.split_once('.') {
            Some((name, sub)) => (name, None, Some(sub)),
            None => (rest, None, None),
        },
    };
    let attr = kind.find(name).ok_or_else(unknown)?;
    let sub = sub
        .map(|s| attr.find_sub(s).ok_or_else(unknown))
        .transpose()?;
    let filter = filter
        .map(|f| {
            let bad = || {
                invalid_path(format!(
                    "cannot read the filter in `{path}`: only `attribute eq value`"
                ))
            };
            let mut parts = f.trim().splitn(3, ' ');
            let (Some(sub), Some(op), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad());
            };
            if !op.eq_ignore_ascii_case("eq") {
                return Err(bad());
            }
            let sub = attr.find_sub(sub).ok_or_else(unknown)?;
            let value = serde_json::from_str(v.trim()).map_err(|_| bad())?;
            Ok(Filter { sub, value })
        })
        .transpose()?;
    if filter.is_some() && !attr.multi {
        return Err(invalid_path(format!(
            "`{}` has one value; a filter selects among many",
            attr.name
        )));
    }
    Ok(Path { attr, filter, sub })
}

/// Applies one PATCH operation to `doc` (RFC 7644 section 3.5.2).
pub fn patch(
    kind: Kind,
    doc: &mut Map<String, Value>,
    op: &str,
    path: Option<&str>,
    value: Option<&Value>,
) -> Result<(), Answer> {
    let op = op.to_ascii_lowercase();
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return match op.as_str() {
            "add" | "replace" => {
                let value = value.cloned().unwrap_or(Value::Null);
                for (name, v) in normalise(kind, &value, false)? {
                    let attr = kind.find(&name).ok_or_else(|| invalid_path(name.clone()))?;
                    set(doc, attr, v, op == "add");
                }
                Ok(())
            }
            "remove" => Err(error(
                StatusCode::BAD_REQUEST,
                Some("noTarget"),
                "a remove operation needs a path",
            )),
            _ => Err(invalid_value(format!("unknown operation `{op}`"))),
        };
    };
    let p = parse_path(kind, path)?;
    if p.attr.mutability == Mutability::ReadOnly {
        return Err(mutability(format!("`{}` is read-only", p.attr.name)));
    }
    let name = p.attr.name;
    match op.as_str() {
        "add" | "replace" => {
            let given = value.unwrap_or(&Value::Null);
            match (&p.filter, p.sub) {
                (None, None) => match self::value(p.attr, given)? {
                    Some(v) => set(doc, p.attr, v, op == "add"),
                    None if op == "replace" => {
                        doc.remove(name);
                    }
                    None => {}
                },
                (None, Some(sub)) if !p.attr.multi => {
                    let v = self::value(sub, given)?;
                    let o = doc.entry(name).or_insert_with(|| Value::Object(Map::new()));
                    set_sub(o, sub, v);
                }
                (filter, sub) => {
                    let items = items_mut(doc, name);
                    let mut hit = false;
                    for item in items.iter_mut() {
                        if filter.as_ref().is_some_and(|f| !f.matches(item)) {
                            continue;
                        }
                        hit = true;
                        match sub {
                            Some(sub) => set_sub(item, sub, self::value(sub, given)?),
                            None => *item = single(p.attr, given)?,
                        }
                    }
                    if !hit {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            Some("noTarget"),
                            format!("no value of `{name}` matches `{path}`"),
                        ));
                    }
                }
            }
        }
        "remove" => {
            if p.attr.required && p.filter.is_none() && p.sub.is_none() {
                return Err(mutability(format!("`{name}` is required")));
            }
            match (&p.filter, p.sub) {
                (None, None) => {
                    doc.remove(name);
                }
                (None, Some(sub)) if !p.attr.multi => {
                    if let Some(o) = doc.get_mut(name) {
                        set_sub(o, sub, None);
                    }
                }
                (filter, sub) => {
                    let items = items_mut(doc, name);
                    match sub {
                        Some(sub) => items
                            .iter_mut()
                            .filter(|i| filter.as_ref().is_none_or(|f| f.matches(i)))
                            .for_each(|i| set_sub(i, sub, None)),
                        None => items.retain(|i| filter.as_ref().is_some_and(|f| !f.matches(i))),
                    }
                }
            }
            tidy(doc, name);
        }
        _ => return Err(invalid_value(format!("unknown operation `{op}`"))),
    }
    Ok(())
}

/// Adds (`add`) or puts in place (`replace`) the value of an attribute: a multi-valued one
/// gains the new values or is replaced by them; a complex one has the sub-attributes given
/// replaced and keeps the others; a simple one is replaced.
fn set(doc: &mut Map<String, Value>, attr: &Attr, v: Value, add: bool) {
    match (attr.multi, attr.kind, doc.get_mut(attr.name)) {
        (true, _, Some(Value::Array(have))) if add => {
            if let Value::Array(new) = v {
                for item in new {
                    if !have.contains(&item) {
                        have.push(item);
                    }
                }
            }
        }
        (false, Type::Complex, Some(Value::Object(have))) => {
            if let Value::Object(new) = v {
                have.extend(new);
            }
        }
        _ => {
            doc.insert(attr.name.to_string(), v);
        }
    }
}

fn set_sub(item: &mut Value, sub: &Attr, v: Option<Value>) {
    if let Some(o) = item.as_object_mut() {
        match v {
            Some(v) => o.insert(sub.name.to_string(), v),
            None => o.remove(sub.name),
        };
    }
}

fn items_mut<'d>(doc: &'d mut Map<String, Value>, name: &str) -> &'d mut Vec<Value> {
    let v = doc.entry(name).or_insert_with(|| Value::Array(Vec::new()));
    if !v.is_array() {
        *v = Value::Array(Vec::new());
    }
    match v {
        Value::Array(items) => items,
        _ => unreachable!("made an array above"),
    }
}

/// An attribute left with no value is unassigned.
fn tidy(doc: &mut Map<String, Value>, name: &str) {
    let empty = match doc.get(name) {
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        doc.remove(name);
    }
}

/// The `attributes` and `excludedAttributes` of a query (RFC 7644 section 3.9).
#[derive(Debug, Default, Clone)]
pub struct Projection {
    only: Option<Vec<(String, Option<String>)>>,
    without: Vec<(String, Option<String>)>,
}

impl Projection {
    pub fn new(kind: Kind, attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let names = |list: &str| -> Vec<(String, Option<String>)> {
            list.split(',')
                .map(|n| super::schema::strip_urn(kind, n.trim()))
                .filter(|n| !n.is_empty())
                .map(|n| match n.split_once('.') {
                    Some((a, s)) => (a.to_string(), Some(s.to_string())),
                    None => (n.to_string(), None),
                })
                .collect()
        };
        Projection {
            only: attributes.map(names),
            without: excluded.map(names).unwrap_or_default(),
        }
    }

    /// Whether the answer leaves out `name` entirely (so it need not be rendered).
    pub fn omits(&self, name: &str) -> bool {
        let named = |list: &[(String, Option<String>)]| {
            list.iter()
                .any(|(a, s)| a.eq_ignore_ascii_case(name) && s.is_none())
        };
        match &self.only {
            Some(only) => !only.iter().any(|(a, _)| a.eq_ignore_ascii_case(name)),
            None => named(&self.without),
        }
    }

    pub fn apply(&self, mut resource: Value) -> Value {
        let Some(o) = resource.as_object_mut() else {
            return resource;
        };
        let always = |k: &str| k == "id" || k == "schemas";
        if let Some(only) = &self.only {
            o.retain(|k, v| {
                if always(k) {
                    return true;
                }
                let subs: Vec<&str> = only
                    .iter()
                    .filter(|(a, _)| a.eq_ignore_ascii_case(k))
                    .map(|(_, s)| s.as_deref().unwrap_or(""))
                    .collect();
                if subs.is_empty() {
                    return false;
                }
                if !subs.contains(&"") {
                    keep_subs(v, &subs);
                }
                true
            });
        }
        for (a, s) in &self.without {
            let Some(key) = o.keys().find(|k| k.eq_ignore_ascii_case(a)).cloned() else {
                continue;
            };
            if always(&key) {
                continue;
            }
            match s {
                None => {
                    o.remove(&key);
                }
                Some(s) => {
                    if let Some(v) = o.get_mut(&key) {
                        drop_sub(v, s);
                    }
                }
            }
        }
        resource
    }
}

fn keep_subs(v: &mut Value, subs: &[&str]) {
    match v {
        Value::Object(o) => o.retain(|k, _| subs.iter().any(|s| s.eq_ignore_ascii_case(k))),
        Value::Array(items) => items.iter_mut().for_each(|i| keep_subs(i, subs)),
        _ => {}
    }
}

fn drop_sub(v: &mut Value, sub: &str) {
    match v {
        Value::Object(o) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
        Value::Array(items) => items.iter_mut().for_each(|i| drop_sub(i, sub)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> Map<String, Value> {
        normalise(Kind::Users, &v, true).unwrap()
    }

    #[test]
    fn bodies_are_checked_and_named_as_the_schema_names_them() {
        let doc = user(json!({"USERNAME": "ada", "id": "x", "name": {"GivenName": "Ada"}}));
        assert_eq!(
            doc,
            *json!({"userName": "ada", "name": {"givenName": "Ada"}})
                .as_object()
                .unwrap()
        );
        let (status, body) =
            normalise(Kind::Users, &json!({"userName": "a", "shoeSize": 4}), true).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("shoeSize"));
        assert!(
            normalise(Kind::Users, &json!({"displayName": "a"}), true).is_err(),
            "userName is required"
        );
        assert!(normalise(
            Kind::Users,
            &json!({"userName": "a", "active": "yes"}),
            true
        )
        .is_err());
    }

    #[test]
    fn patch_reaches_attributes_sub_attributes_and_filtered_values() {
        let mut doc = user(json!({"userName": "ada", "emails": [
            {"value": "a@w.example", "type": "work"}, {"value": "a@h.example", "type": "home"}
        ]}));
        patch(
            Kind::Users,
            &mut doc,
            "add",
            Some("name.givenName"),
            Some(&json!("Ada")),
        )
        .unwrap();
        patch(
            Kind::Users,
            &mut doc,
            "replace",
            Some("emails[type eq \"WORK\"].value"),
            Some(&json!("ada@w.example")),
        )
        .unwrap();
        patch(
            Kind::Users,
            &mut doc,
            "remove",
            Some("emails[type eq \"home\"]"),
            None,
        )
        .unwrap();
        patch(
            Kind::Users,
            &mut doc,
            "Replace",
            None,
            Some(&json!({"displayName": "Ada L", "active": false})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(doc.clone()),
            json!({"userName": "ada", "name": {"givenName": "Ada"}, "displayName": "Ada L", "active": false,
                   "emails": [{"value": "ada@w.example", "type": "work"}]})
        );
        patch(
            Kind::Users,
            &mut doc,
            "remove",
            Some("emails[type eq \"work\"]"),
            None,
        )
        .unwrap();
        assert!(
            !doc.contains_key("emails"),
            "an attribute with no values left is unassigned"
        );
        assert_eq!(
            patch(Kind::Users, &mut doc, "remove", Some("userName"), None)
                .unwrap_err()
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            patch(
                Kind::Users,
                &mut doc,
                "replace",
                Some("id"),
                Some(&json!("y"))
            )
            .unwrap_err()
            .0,
            StatusCode::BAD_REQUEST
        );
        assert!(
            patch(
                Kind::Users,
                &mut doc,
                "replace",
                Some("emails[type eq \"home\"].value"),
                Some(&json!("z"))
            )
            .is_err(),
            "no value matches"
        );
        assert!(patch(
            Kind::Users,
            &mut doc,
            "add",
            Some("shoeSize"),
            Some(&json!(4))
        )
        .is_err());
    }

    #[test]
    fn answers_carry_what_was_asked_for_and_always_the_id() {
        let r = json!({"id": "1", "schemas": [], "userName": "ada", "name": {"givenName": "A", "familyName": "L"}, "active": true});
        let only = Projection::new(
            Kind::Users,
            Some("name.givenName,urn:ietf:params:scim:schemas:core:2.0:User:active"),
            None,
        );
        assert_eq!(
            only.apply(r.clone()),
            json!({"id": "1", "schemas": [], "name": {"givenName": "A"}, "active": true})
        );
        let without = Projection::new(Kind::Users, None, Some("name,id"));
        assert_eq!(
            without.apply(r),
            json!({"id": "1", "schemas": [], "userName": "ada", "active": true})
        );
        assert!(only.omits("members") && !only.omits("name"));
    }
}
