use std::path::Path;

use super::*;

const MINIMAL: &str = "
directory:
  source: { file: workers.csv }
  key: id
  email: mail
  attributes:
    id: { column: ID, type: string }
    mail: { column: Mail, type: string }
rules: { dir: rules }
";

fn load(text: &str) -> Result<Config, String> {
    Config::from_yaml(text, Path::new("conf/rosterd.yaml")).map_err(|e| e.to_string())
}

#[test]
fn paths_are_relative_to_the_config_file_and_defaults_apply() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(
        c.directory.source.file.as_deref(),
        Some(Path::new("conf/workers.csv"))
    );
    assert_eq!(c.rules.dir, Path::new("conf/rules"));
    assert_eq!(c.directory.source.format(), SourceFormat::Csv);
    assert_eq!(c.directory.max_bad_rows_percent, 5.0);
    assert!(c.targets.is_empty());
}

#[test]
fn unknown_fields_are_errors_with_their_place() {
    let e = load(&MINIMAL.replace("rules: { dir: rules }", "rules: { dir: rules, dri: x }"))
        .unwrap_err();
    assert!(e.contains("unknown field `dri`"), "{e}");
    assert!(e.contains("line 9"), "{e}");
}

#[test]
fn roles_must_name_string_attributes() {
    let e = load(&MINIMAL.replace("email: mail", "email: mial")).unwrap_err();
    assert_eq!(
        e,
        "conf/rosterd.yaml: directory.email: `mial` is not one of directory.attributes"
    );
    let e = load(&MINIMAL.replace(
        "mail: { column: Mail, type: string }",
        "mail: { column: Mail, type: number }",
    ))
    .unwrap_err();
    assert!(
        e.ends_with("directory.email: attribute `mail` must be of type string"),
        "{e}"
    );
}

#[test]
fn attribute_names_must_be_identifiers_and_not_reserved() {
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    is_manager: { column: M, type: bool }\n    id: {",
    ))
    .unwrap_err();
    assert!(e.contains("`is_manager` is reserved"), "{e}");
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    Cost-Center: { column: C, type: string }\n    id: {",
    ))
    .unwrap_err();
    assert!(
        e.contains("`Cost-Center` is not a valid attribute name"),
        "{e}"
    );
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    tags: { column: T, type: string, separator: \",\" }\n    id: {",
    ))
    .unwrap_err();
    assert!(
        e.contains("`separator` is only for attributes of type list"),
        "{e}"
    );
}

#[test]
fn json_sources_are_recognised_by_extension() {
    let c = load(&MINIMAL.replace("workers.csv", "report.JSON")).unwrap();
    assert_eq!(c.directory.source.format(), SourceFormat::WorkdayJson);
}

#[test]
fn a_url_source_takes_https_and_credentials_from_the_environment() {
    let url = MINIMAL.replace(
        "source: { file: workers.csv }",
        "source:\n    url: https://wd5.example.com/ccx/service/customreport2/acme/Workers?format=json\n    auth: { bearer: { token_env: WORKDAY_TOKEN } }",
    );
    let c = load(&url).unwrap();
    assert_eq!(c.directory.source.format(), SourceFormat::WorkdayJson);
    assert!(
        matches!(c.directory.source.auth, Some(SourceAuth::Bearer { ref token_env }) if token_env == "WORKDAY_TOKEN")
    );
    let e = load(&MINIMAL.replace(
        "source: { file: workers.csv }",
        "source: { url: \"http://hr.example.com/x\" }",
    ))
    .unwrap_err();
    assert!(e.contains("is plain http"), "{e}");
    assert!(load(&MINIMAL.replace(
        "source: { file: workers.csv }",
        "source: { url: \"http://127.0.0.1:8080/x\" }"
    ))
    .is_ok());
    let e = load(&MINIMAL.replace(
        "source: { file: workers.csv }",
        "source: { file: a.csv, url: \"https://x/y\" }",
    ))
    .unwrap_err();
    assert!(e.contains("not both"), "{e}");
    let e = load(&MINIMAL.replace(
        "source: { file: workers.csv }",
        "source: { url: \"https://x/y\", auth: { basic: { username: u, password: p } } }",
    ))
    .unwrap_err();
    assert!(e.contains("unknown field `password`"), "{e}");
}

#[test]
fn a_database_password_never_prints() {
    let c = load(&format!(
        "database: postgres://rosterd:pa55word@db:5432/rosterd\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(
        c.database.expose(),
        "postgres://rosterd:pa55word@db:5432/rosterd"
    );
    assert!(!format!("{c:?}").contains("pa55word"));
    assert_eq!(
        c.database.to_string(),
        "postgres://rosterd:***@db:5432/rosterd"
    );
    let e = load(&format!("database: mysql://u:pa55word@db/x\n{MINIMAL}")).unwrap_err();
    assert!(e.contains("is neither") && !e.contains("pa55word"), "{e}");
}

#[test]
fn the_daemon_defaults_sync_within_the_hour_and_bad_options_name_their_field() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.daemon.sync, "*/15 * * * *");
    assert_eq!(c.daemon.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.daemon.shutdown_timeout_seconds, 30.0);
    let e = load(&format!("{MINIMAL}daemon: {{ sync: \"*/15 * *\" }}\n")).unwrap_err();
    assert!(e.contains("daemon.sync: `*/15 * *` has 3 fields"), "{e}");
    let e = load(&format!("{MINIMAL}daemon: {{ time_zone: Mars/Olympus }}\n")).unwrap_err();
    assert!(e.contains("daemon.sync: time zone `Mars/Olympus`"), "{e}");
    let e = load(&format!(
        "{MINIMAL}daemon: {{ shutdown_timeout_seconds: -1 }}\n"
    ))
    .unwrap_err();
    assert!(e.contains("daemon.shutdown_timeout_seconds"), "{e}");
    let c = load(&format!(
        "{MINIMAL}daemon: {{ sync: \"*/5 * * * * *\", time_zone: \"+02:00\" }}\n"
    ))
    .unwrap();
    assert_eq!(c.daemon.time_zone, "+02:00");
}

#[test]
fn the_database_url_can_come_from_the_environment() {
    // A name no other test reads; std serialises its own environment access.
    std::env::set_var("ROSTERD_TEST_DB_URL_9c1d", "postgres://u:pw@db/rosterd");
    let c = load(&format!(
        "{MINIMAL}database_env: ROSTERD_TEST_DB_URL_9c1d\n"
    ))
    .unwrap();
    assert_eq!(c.database.expose(), "postgres://u:pw@db/rosterd");
    assert!(
        !format!("{c:?}").contains("pw"),
        "the password shows in Debug"
    );
    // Unset, the config still loads (`check` opens no database); opening it says why not.
    let c = load(&format!(
        "{MINIMAL}database_env: ROSTERD_SURELY_UNSET_4f2a\n"
    ))
    .unwrap();
    let e = c.database_url().unwrap_err().to_string();
    assert!(e.contains("database_env"), "{e}");
    assert!(e.contains("ROSTERD_SURELY_UNSET_4f2a"), "{e}");
}

const UI: &str = "
ui:
  issuer: https://example.okta.com/oauth2/default
  client_id: 0oa1b2c3
  redirect_url: https://rosterd.example.com/auth/callback
  scopes: [openid, email, profile, groups]
  viewers:
    - claim: it-support
  approvers:
    - group: corpsec-approvers
";

#[test]
fn the_console_is_off_without_a_ui_section_and_reads_its_roles() {
    assert!(load(MINIMAL).unwrap().ui.is_none());
    let c = load(&format!("{MINIMAL}{UI}")).unwrap();
    let ui = c.ui.unwrap();
    assert_eq!(ui.viewers, vec![Role::Claim("it-support".into())]);
    assert_eq!(ui.approvers, vec![Role::Group("corpsec-approvers".into())]);
    assert_eq!(ui.client_secret_env, "ROSTERD_OIDC_CLIENT_SECRET");
    assert_eq!(ui.groups_claim, "groups");
    assert_eq!(ui.session_hours, 8.0);
    assert_eq!(
        ui.rosterd_groups().collect::<Vec<_>>(),
        vec![("approvers", "corpsec-approvers")]
    );
}

#[test]
fn console_mistakes_are_errors_that_name_the_field() {
    let cases = [
        (
            UI.replace("https://example.okta.com", "http://example.okta.com"),
            "ui.issuer: `http://example.okta.com/oauth2/default` is plain http",
        ),
        (
            UI.replace("/auth/callback", "/callback"),
            "ui.redirect_url: `https://rosterd.example.com/callback` must end in /auth/callback",
        ),
        (
            UI.replace("    - claim: it-support", "    - claim: it-support\n      group: x"),
            "give one of `claim: GROUP`",
        ),
        (
            UI.replace("    - claim: it-support", "    - team: it-support"),
            "unknown field `team`",
        ),
        (
            UI.replace(
                "  viewers:\n    - claim: it-support\n  approvers:\n    - group: corpsec-approvers\n",
                "",
            ),
            "ui: give `viewers` or `approvers`",
        ),
        (
            format!("{UI}  session_hours: 0\n"),
            "ui.session_hours: must be more than 0",
        ),
    ];
    for (ui, expected) in cases {
        let e = load(&format!("{MINIMAL}{ui}")).unwrap_err();
        assert!(e.contains(expected), "expected {expected:?} in: {e}");
    }
    // Plain http is for a console on this machine.
    let local = UI
        .replace("https://example.okta.com", "http://127.0.0.1:8080")
        .replace("https://rosterd.example.com", "http://localhost:9464");
    assert!(load(&format!("{MINIMAL}{local}")).is_ok());
}

#[test]
fn signing_out_goes_through_the_provider_unless_told_not_to() {
    let ui = load(&format!("{MINIMAL}{UI}")).unwrap().ui.unwrap();
    assert!(ui.sign_out_at_provider);
    assert_eq!(
        ui.signed_out_url(),
        "https://rosterd.example.com/auth/signed-out"
    );
    let off = load(&format!("{MINIMAL}{UI}  sign_out_at_provider: false\n")).unwrap();
    assert!(!off.ui.unwrap().sign_out_at_provider);
}

#[test]
fn the_rules_repository_is_checked_and_its_paths_resolved() {
    let with = |requests: &str| load(&format!("{MINIMAL}requests:\n{requests}"));
    let c = with("  repository: { remote: 'git@gitlab.example.com:corpsec/rules.git', ssh_key_file: keys/deploy }\n").unwrap();
    let r = c.requests.unwrap();
    assert_eq!(r.workdir, Path::new("conf/.rosterd/rules-repository"));
    assert_eq!(
        r.repository.ssh_key_file.as_deref(),
        Some(Path::new("conf/keys/deploy"))
    );
    assert_eq!(
        (r.repository.branch.as_str(), r.repository.path.as_path()),
        ("main", Path::new("."))
    );
    assert!(!r.direct_commit);
    for (bad, says) in [
        (
            "{ remote: 'https://bot:ghp_x@github.com/acme/rules.git' }",
            "holds a password",
        ),
        ("{ remote: x, branch: 'main..x' }", "is not a branch name"),
        ("{ remote: x, branch: '-f' }", "is not a branch name"),
        (
            "{ remote: x, path: ../elsewhere }",
            "must be a folder inside the repository",
        ),
        ("{ remote: '' }", "must not be empty"),
    ] {
        let e = with(&format!("  repository: {bad}\n")).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
        assert!(!e.contains("ghp_x"), "{e}");
    }
    let e = with("  repository: { remote: x }\n  author_email: 'not an address'\n").unwrap_err();
    assert!(
        e.contains("requests.author_name and requests.author_email"),
        "{e}"
    );
}

#[test]
fn a_webhook_has_one_address_over_https_and_known_events() {
    let with = |hooks: &str| load(&format!("{MINIMAL}notifications:\n  webhooks:\n{hooks}"));
    let c = with("    - { name: a, url: 'https://hooks.example.com/x', events: [decision, hold] }\n    - { name: b, url_env: SLACK_URL, format: slack }\n").unwrap();
    let n = c.notifications.unwrap();
    assert_eq!(n.webhooks[0].events, [EventKind::Decision, EventKind::Hold]);
    assert_eq!(n.webhooks[1].format, WebhookFormat::Slack);
    assert_eq!((n.retries, n.retry_backoff_ms), (3, 500));
    for (bad, says) in [
        ("{ name: a }", "give one of `url` or `url_env`"),
        (
            "{ name: a, url: 'https://x.example.com', url_env: X }",
            "give one of `url` or `url_env`",
        ),
        (
            "{ name: a, url: 'http://hooks.example.com/?key=s3cret' }",
            "notifications.webhooks[0].url",
        ),
        (
            "{ name: a, url_env: X, events: [everything] }",
            "unknown variant `everything`",
        ),
    ] {
        let e = with(&format!("    - {bad}\n")).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
