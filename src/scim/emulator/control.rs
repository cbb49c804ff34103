//! The control API under `/_emulator`: faults, quirks, counters, restarts and renames by hand,
//! as tests drive them over HTTP.

use super::*;

pub(super) fn admin(shared: &Shared, method: &Method, rest: &[&str], body: &[u8]) -> Answer {
    let [tenant, what] = rest else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            "use /_emulator/TENANT/{groups,stats,faults,quirks,restart,rename}",
        );
    };
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let bad = |e: serde_json::Error| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            e.to_string(),
        )
    };
    match (method.as_str(), *what) {
        ("GET", "groups") => {
            let groups: BTreeMap<String, BTreeSet<String>> = t
                .groups
                .values()
                .map(|g| (g.display_name.clone(), t.user_names(&g.members)))
                .collect();
            (StatusCode::OK, serde_json::to_value(groups).ok())
        }
        ("GET", "stats") => (StatusCode::OK, serde_json::to_value(&t.counters).ok()),
        ("PUT", "faults") => match serde_json::from_slice(body) {
            Ok(faults) => {
                t.faults = faults;
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        ("PUT", "quirks") => match serde_json::from_slice(body) {
            Ok(quirks) => {
                t.quirks = quirks;
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        // `{"recreate_users": true}`: see [`Emulator::restart_empty`].
        ("POST", "restart") => match serde_json::from_slice::<Restart>(body) {
            Ok(r) => {
                t.restart_empty(r.recreate_users);
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        // `{"from": "Sales", "to": "Sales (old)"}`: see [`Emulator::rename_by_hand`].
        ("POST", "rename") => match serde_json::from_slice::<Rename>(body) {
            Ok(r) if t.rename(&r.from, &r.to) => (StatusCode::NO_CONTENT, None),
            Ok(r) => error(
                StatusCode::NOT_FOUND,
                None,
                format!("no group named `{}`", r.from),
            ),
            Err(e) => bad(e),
        },
        _ => error(StatusCode::NOT_FOUND, None, "no such emulator endpoint"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Restart {
    #[serde(default)]
    recreate_users: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rename {
    from: String,
    to: String,
}
