//! Push scenarios against a target of `kind: ldap`: a private OpenLDAP server (Debian's
//! slapd, started by each test over ldaps with its own CA, rosterd bound as a service
//! account that may write groups and read users), each checked by reading the directory.
//! The scenarios shared with the other kinds come from `common::scenarios`.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::scenarios::{self, opts, reconcile};
use common::world::{World, TARGET};
use common::TestDb;

on_both_backends!(
    a_sync_with_nothing_changed_sends_no_write,
    changes_are_pushed_as_modifies,
    a_mass_removal_is_held_until_approved,
);

async fn a_sync_with_nothing_changed_sends_no_write(db: TestDb) {
    let Some(world) = World::with_slapd(db, 200, &[]).await else {
        return;
    };
    scenarios::nothing_changed_sends_no_write(&world).await;
    world.assert_one_entry_each().await;
    // Groups are groupOfNames under the group base, named by cn, with rosterd's
    // description.
    let raw = world.directory().groups_raw().await;
    assert_eq!(
        raw.keys().cloned().collect::<Vec<_>>(),
        ["People Managers", "engineering", "everyone", "sales"]
    );
}

async fn changes_are_pushed_as_modifies(db: TestDb) {
    let Some(mut world) = World::with_slapd(db, 200, &[]).await else {
        return;
    };
    scenarios::changes_are_pushed_as_deltas(&mut world).await;
}

async fn a_mass_removal_is_held_until_approved(db: TestDb) {
    let Some(mut world) = World::with_slapd(db, 200, &[]).await else {
        return;
    };
    scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
}

#[tokio::test]
async fn a_reconcile_repairs_drift() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_reconcile_repairs_drift(&world).await;
}

#[tokio::test]
async fn a_link_takes_over_a_group_and_only_made_groups_are_deleted() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_link_takes_over_a_group_and_only_made_groups_are_deleted(&world).await;
}

#[tokio::test]
async fn a_directory_restored_without_its_groups_is_rebuilt_in_one_plain_sync() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_target_restarted_empty_is_rebuilt_in_one_plain_sync(&world).await;
}

/// A group renamed by hand (`modrdn`) keeps its entryUUID: rosterd finds it by its id and
/// names it back, with the drift recorded.
#[tokio::test]
async fn a_group_renamed_by_hand_is_named_back() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
}

#[tokio::test]
async fn a_broken_guardrail_holds_the_group_until_approved() {
    let Some(mut world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_broken_guardrail_holds_the_group_until_approved(&mut world).await;
}

/// Verify, don't assume: a directory takes any DN as a member, a user's that was deleted
/// included. Members whose DN is no user are found by reading back and confirming the
/// DNs, reported as `not_a_user`, and removed by a reconcile; a member value outside the
/// user base (a nested group) is kept and reported, never removed.
#[tokio::test]
async fn members_that_are_no_user_are_found_and_nested_groups_kept() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    world.sync(opts()).await;
    let ghost = format!("uid=left-long-ago,{}", world.directory().people());
    let nested = world.directory().group_dn("contractors");
    world
        .directory()
        .edit_members("everyone", &[ghost.clone(), nested.clone()], &[])
        .await;
    let report = world.sync(reconcile()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let raw = world.directory().groups_raw().await;
    assert!(!raw["everyone"].contains(&ghost), "the ghost is removed");
    assert!(
        raw["everyone"].contains(&nested),
        "the nested group is kept"
    );
    let everyone = report.targets[0]
        .groups
        .iter()
        .find(|g| g.group == "everyone")
        .unwrap();
    assert_eq!(everyone.kept, std::slice::from_ref(&nested), "{everyone:?}");
    let store = world.store().await;
    let drift = store.drift(TARGET, "everyone").await.unwrap();
    store.close().await;
    assert!(
        drift.iter().any(|d| d.kind.as_str() == "not_a_user"),
        "{drift:?}"
    );
    // And the next sync has nothing to do, the nested group still kept.
    let next = world.sync(reconcile()).await;
    assert_eq!(next.targets[0].writes, 0, "{next:?}");
    assert!(world.directory().groups_raw().await["everyone"].contains(&nested));
}

/// A member added or removed by hand between rosterd's read and its modify fails the whole
/// LDAP modify (a value that exists, or one that does not); rosterd reads the group and
/// sends what is still wanted, so the push converges without an error.
#[tokio::test]
async fn a_modify_that_meets_values_changed_by_hand_is_sent_again_as_still_wanted() {
    if let Some(world) = World::with_slapd(common::sqlite_db(), 200, &[]).await {
        values_changed_by_hand(world).await;
    }
}

/// The same against Active Directory, which answers 68 (entryAlreadyExists) for a member
/// added twice.
#[tokio::test]
async fn active_directory_modify_that_meets_values_changed_by_hand_is_sent_again() {
    if let Some(world) = World::with_samba(common::sqlite_db(), 200, &[]).await {
        values_changed_by_hand(world).await;
    }
}

async fn values_changed_by_hand(mut world: World) {
    world.sync(opts()).await;
    let before = world.expected(&[]).await;
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering" && w.status == "Active")
            .take(3)
        {
            w.division = "Sales".into();
        }
    });
    let joiners: Vec<String> = world
        .workers
        .iter()
        .filter(|w| w.division == "Sales" && w.status == "Active")
        .map(|w| w.email.to_lowercase())
        .filter(|e| !before["sales"].contains(e))
        .collect();
    assert_eq!(joiners.len(), 3);
    // An administrator already added one of them to sales.
    let one = world.directory().user_dn(&joiners[0]);
    world.directory().edit_members("sales", &[one], &[]).await;
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    // One that left sales is removed by hand too, before rosterd's removal: the same.
    let sales = &before["sales"];
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Sales" && sales.contains(&w.email.to_lowercase()))
            .take(2)
        {
            w.division = "Engineering".into();
        }
    });
    let leaving = world
        .workers
        .iter()
        .find(|w| w.division == "Engineering" && sales.contains(&w.email.to_lowercase()))
        .map(|w| world.directory().user_dn(&w.email))
        .unwrap();
    world
        .directory()
        .edit_members("sales", &[], &[leaving])
        .await;
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
}

/// The wrong password stops the target with what to check, and never shows the password;
/// a CA that did not sign the server's certificate refuses the connection.
#[tokio::test]
async fn a_wrong_password_or_an_unknown_ca_fails_with_what_to_do() {
    let Some(world) = World::with_slapd(common::sqlite_db(), 20, &[]).await else {
        return;
    };
    std::env::set_var("ROSTERD_TEST_LDAP_WRONG", "not-the-password");
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
    std::fs::write(
        world.path("rosterd.yaml"),
        config.replace("ROSTERD_TEST_LDAP_PASSWORD", "ROSTERD_TEST_LDAP_WRONG"),
    )
    .unwrap();
    let report = world.sync(opts()).await;
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(error.contains("invalidCredentials"), "{error}");
    assert!(error.contains("auth.simple.bind_dn"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(world.directory().groups_raw().await.is_empty());
    // Another CA: the certificate is refused before anything is sent.
    let other_ca = world.path("other-ca.crt");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=someone else", "-keyout"])
        .arg(world.path("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(
        world.path("rosterd.yaml"),
        config.replace(
            &world.directory().ca_file().display().to_string(),
            &other_ca.display().to_string(),
        ),
    )
    .unwrap();
    let report = world.sync(opts()).await;
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(world.directory().groups_raw().await.is_empty());
}

/// A dry run shows each modify as it would be sent (the group's DN, the values added and
/// deleted) and changes nothing in the directory.
#[tokio::test]
async fn a_dry_run_shows_the_modifies_and_changes_nothing() {
    let Some(mut world) = World::with_slapd(common::sqlite_db(), 100, &[]).await else {
        return;
    };
    world.sync(opts()).await;
    world.edit_workers(|workers| {
        let w = workers
            .iter_mut()
            .find(|w| w.division == "Engineering" && w.status == "Active")
            .unwrap();
        w.division = "Sales".into();
    });
    let before = world.directory().groups_raw().await;
    let report = world
        .sync(rosterd::push::Options {
            dry_run: true,
            ..opts()
        })
        .await;
    let requests: Vec<&String> = report.targets[0]
        .groups
        .iter()
        .flat_map(|g| &g.requests)
        .collect();
    let sales = world.directory().group_dn("sales").to_lowercase();
    assert!(
        requests.iter().any(|r| r.starts_with("LDAP modify ")
            && r.to_lowercase().contains(&sales)
            && r.contains("add member: uid=")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("delete member: uid=")),
        "{requests:#?}"
    );
    assert_eq!(world.directory().groups_raw().await, before);
}

/// StartTLS on slapd's plain port, then a SASL EXTERNAL bind with a client certificate
/// that slapd maps to rosterd's account (the only one that may write the groups): the push
/// works the same over either.
#[tokio::test]
async fn starttls_and_a_client_certificate_bind_push_the_same() {
    let Some(mut world) = World::with_slapd(common::sqlite_db(), 60, &[]).await else {
        return;
    };
    let path = world.path("rosterd.yaml");
    let config = std::fs::read_to_string(&path).unwrap();
    let plain = format!("ldap://127.0.0.1:{}", world.directory().plain_port.unwrap());
    let starttls = config
        .replace(&world.directory().url(), &plain)
        .replace("batch_size: 10 }", "batch_size: 10, starttls: true }");
    std::fs::write(&path, &starttls).unwrap();
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let (cert, key) = world.directory().client_certificate();
    let external: String = starttls
        .lines()
        .map(|l| {
            if l.starts_with("    auth:") {
                format!(
                    "    auth: {{ client_certificate: {{ cert_file: {}, key_file: {} }} }}\n",
                    cert.display(),
                    key.display()
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, external).unwrap();
    world.edit_workers(|workers| {
        for w in workers
            .iter_mut()
            .filter(|w| w.division == "Engineering" && w.status == "Active")
            .take(2)
        {
            w.division = "Sales".into();
        }
    });
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.targets[0].writes > 0, "{report:?}");
    world.assert_converged(&[]).await;
}

/// `rosterd check` refuses plain LDAP to another host, a target without its bases, and
/// settings of another kind, each naming the field.
#[test]
fn check_refuses_plain_ldap_and_missing_bases() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rosterd.yaml"),
    )
    .unwrap();
    let directory = &sample[sample.find("directory:").unwrap()..sample.find("rules:\n").unwrap()];
    let base =
        |target: &str| format!("{directory}rules:\n  dir: rules\ntargets:\n  dir:\n{target}");
    let cases = [
        (
            "    kind: ldap\n    url: ldap://ldap.example.com\n    ldap: { group_base: \"ou=groups,dc=x\", user_base: \"ou=people,dc=x\" }\n",
            "plain LDAP",
        ),
        (
            "    kind: ldap\n    url: ldaps://ldap.example.com\n",
            "ldap: an LDAP target needs",
        ),
        (
            "    kind: ldap\n    url: ldaps://ldap.example.com\n    ldap: { group_base: groups, user_base: \"ou=people,dc=x\" }\n",
            "ldap.group_base: `groups` is not a DN",
        ),
        (
            "    kind: ldap\n    url: ldaps://ldap.example.com\n    ldap: { group_base: \"ou=groups,dc=x\", user_base: \"ou=people,dc=x\" }\n    auth: { bearer: { token_env: T } }\n",
            "an LDAP target takes a simple bind",
        ),
        (
            "    url: https://app.example.com/scim/v2\n    ldap: { group_base: \"ou=groups,dc=x\", user_base: \"ou=people,dc=x\" }\n",
            "ldap: only an LDAP (`kind: ldap`) target has it",
        ),
    ];
    for (target, want) in cases {
        let path = dir.path().join("rosterd.yaml");
        std::fs::write(&path, base(target)).unwrap();
        let error = match rosterd::config::Config::load(&path) {
            Ok(_) => panic!("accepted:\n{target}"),
            Err(e) => format!("{e:?}"),
        };
        assert!(error.contains(want), "want `{want}` in:\n{error}");
    }
    // StartTLS to another host, and plain LDAP named explicitly, are taken.
    for ok in [
        "    kind: ldap\n    url: ldap://ldap.example.com\n    ldap: { group_base: \"ou=groups,dc=x\", user_base: \"ou=people,dc=x\", starttls: true }\n",
        "    kind: ldap\n    url: ldap://ldap.example.com\n    ldap: { group_base: \"ou=groups,dc=x\", user_base: \"ou=people,dc=x\", plain: true }\n",
    ] {
        let path = dir.path().join("rosterd.yaml");
        std::fs::write(&path, base(ok)).unwrap();
        if let Err(e) = rosterd::config::Config::load(&path) {
            panic!("refused:\n{ok}\n{e:?}");
        }
    }
}

// --- Active Directory, on Samba's domain controller ---------------------------------------

/// The first sync against Active Directory makes `group` objects (found again by their
/// objectGUID) with the fewest writes, members matched by `userPrincipalName`; every group
/// over 50 members is read back in ranges of 50 (`member;range=0-49`, then on until `*`),
/// so a reconcile straight after finds nothing to change: all values were read.
#[tokio::test]
async fn active_directory_groups_are_made_and_read_back_in_ranges() {
    let Some(world) = World::with_samba(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    let report = world.sync(opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    world.assert_converged(&[]).await;
    let expected = world.expected(&[]).await;
    assert!(
        expected["everyone"].len() > 150,
        "groups span several ranges"
    );
    let minimum: u64 = expected
        .values()
        .map(|m| (m.len().max(1) as u64).div_ceil(10))
        .sum();
    assert_eq!(report.targets[0].writes, minimum, "{report:?}");
    let again = world.sync(reconcile()).await;
    let t = &again.targets[0];
    assert_eq!((t.writes, again.failed()), (0, 0), "{t:?}");
    assert!(t.groups.iter().all(|g| g.drift == 0), "{t:?}");
    // Reading the four groups took a request per range: everyone's ~190 members are four.
    assert!(t.reads >= 4 + 3, "{t:?}");
}

#[tokio::test]
async fn active_directory_hr_changes_are_pushed_as_modifies() {
    let Some(mut world) = World::with_samba(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::changes_are_pushed_as_deltas(&mut world).await;
}

/// Drift in AD (a member added and one removed by hand) is repaired by a reconcile; a
/// member added twice or removed when absent passes, by the permissive-modify control.
#[tokio::test]
async fn active_directory_drift_is_repaired_by_a_reconcile() {
    let Some(world) = World::with_samba(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_reconcile_repairs_drift(&world).await;
}

#[tokio::test]
async fn active_directory_group_renamed_by_hand_is_named_back() {
    let Some(world) = World::with_samba(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
}

#[tokio::test]
async fn active_directory_mass_removal_is_held_until_approved() {
    let Some(mut world) = World::with_samba(common::sqlite_db(), 200, &[]).await else {
        return;
    };
    scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
}
