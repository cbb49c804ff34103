//! Access reviews and granted requests land as commits in a real git remote (`git daemon`,
//! started by each test), and what rosterd commits passes `rosterd check` and `rosterd test`.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::NaiveDate;
use common::{git, git_daemon};
use rosterd::access::{self, Decision, LandError};
use rosterd::rules::edit::Grant;
use rosterd::rules::Who;

/// A bare repository holding the sample's rules under `rules/`, served by `git daemon`.
struct Remote {
    dir: tempfile::TempDir,
    url: String,
    daemon: std::process::Child,
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Whether the daemon serving `url` answers within 30 seconds (a loaded machine is slow to
/// start one); `false` at once if it exited.
fn answers(url: &str, daemon: &mut std::process::Child) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let probe = std::process::Command::new("git")
            .args(["ls-remote", url])
            .output()
            .unwrap();
        if probe.status.success() {
            return true;
        }
        if daemon.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

impl Remote {
    /// `None` when there is no git-daemon to serve it (see [`git_daemon`]).
    fn start() -> Option<Remote> {
        let daemon_bin = git_daemon()?;
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("rules.git");
        git(
            dir.path(),
            &["init", "--quiet", "--bare", "-b", "main", "rules.git"],
        );
        let seed = dir.path().join("seed");
        git(dir.path(), &["init", "--quiet", "-b", "main", "seed"]);
        copy_dir(Path::new("rules"), &seed.join("rules"));
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "--quiet", "-m", "The sample's rules"]);
        git(&seed, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
        // A port another process takes first makes the daemon exit: another port, then.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut daemon = common::git_daemon_command(&daemon_bin, dir.path(), port)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let url = format!("git://127.0.0.1:{port}/rules.git");
            if answers(&url, &mut daemon) {
                return Some(Remote { dir, url, daemon });
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        panic!("git daemon did not answer on three ports");
    }

    /// A config for the sample, with `requests` on this remote (and `extra` keys under it).
    fn config(&self, extra: &str) -> PathBuf {
        let here = std::env::current_dir().unwrap();
        let text = std::fs::read_to_string("rosterd.yaml")
            .unwrap()
            .replace(
                "file: sample/workers.csv",
                &format!("file: {}/sample/workers.csv", here.display()),
            )
            .replace(
                "  dir: rules\n",
                &format!("  dir: {}/rules\n", here.display()),
            )
            .replace(
                "database: sqlite://rosterd.db",
                &format!(
                    "database: sqlite://{}/rosterd.db",
                    self.dir.path().display()
                ),
            );
        let path = self
            .dir
            .path()
            .join(format!("rosterd-{}.yaml", extra.len()));
        std::fs::write(
            &path,
            format!(
                "{text}\nrequests:\n  repository:\n    remote: {}\n    path: rules\n  workdir: {}\n{extra}",
                self.url,
                self.dir.path().join("work").display()
            ),
        )
        .unwrap();
        path
    }

    /// A fresh clone of the remote at `branch`.
    fn clone(&self, branch: &str) -> PathBuf {
        let to = self
            .dir
            .path()
            .join(format!("clone-{}", branch.replace('/', "-")));
        let _ = std::fs::remove_dir_all(&to);
        git(
            self.dir.path(),
            &[
                "clone",
                "--quiet",
                "--branch",
                branch,
                &self.url,
                to.to_str().unwrap(),
            ],
        );
        to
    }

    fn branches(&self) -> Vec<String> {
        git(self.dir.path(), &["ls-remote", "--heads", &self.url])
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .map(|r| r.trim_start_matches("refs/heads/").to_string())
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A review removes Sam Osei from figma-admins.
const REMOVE_SAM: [&str; 10] = [
    "review",
    "remove",
    "figma-admins",
    "sam.osei@example.com",
    "--by",
    "design-ops@example.com",
    "--comment",
    "Moved to sales",
    "--as-of",
    "2026-12-07",
];

fn rosterd(config: &Path) -> Command {
    let mut cmd = Command::cargo_bin("rosterd").unwrap();
    cmd.env("NO_COLOR", "1").arg("--config").arg(config);
    cmd
}

/// `rosterd check` and `rosterd test` on the rules of a clone: both pass.
fn check_and_test(remote: &Remote, clone: &Path, as_of: &str) {
    let config = remote.config("");
    let text = std::fs::read_to_string(&config).unwrap();
    let here = std::env::current_dir().unwrap();
    let text = text.replace(
        &format!("  dir: {}/rules\n", here.display()),
        &format!("  dir: {}/rules\n", clone.display()),
    );
    let config = clone.join("rosterd.yaml");
    std::fs::write(&config, text).unwrap();
    for command in ["check", "test"] {
        let out = rosterd(&config)
            .args([command, "--as-of", as_of])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rosterd {command} on the commit: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_review_keep_and_a_remove_each_land_on_a_branch_that_check_and_test_accept() {
    let Some(remote) = Remote::start() else {
        return;
    };
    let config = remote.config("");
    let main_before = git(
        remote.dir.path(),
        &["ls-remote", &remote.url, "refs/heads/main"],
    );

    let kept = json(
        &rosterd(&config)
            .args([
                "review",
                "keep",
                "eng-managers-and-pms",
                "lara.brown@example.com",
                "--by",
                "it-ops@example.com",
                "--until",
                "2027-06-30",
                "--comment",
                "Still the platform PM",
                "--as-of",
                "2026-12-07",
                "--format",
                "json",
            ])
            .output()
            .unwrap(),
    );
    let branch = kept["branch"].as_str().unwrap();
    assert!(
        branch.starts_with("rosterd/keep-eng-managers-and-pms-lara.brown-example.com-20261207-"),
        "{branch}"
    );
    assert_eq!(kept["direct"], false);
    assert_eq!(kept["file"], "rules/org/managers.yaml");
    let clone = remote.clone(branch);
    // Exactly the entry's dates changed, nothing else in the repository.
    let diff = git(&clone, &["diff", "--unified=0", "origin/main", "HEAD"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    // The entry had no end date: both lines are new, right under its ticket.
    assert_eq!(
        changed,
        [
            "+        expires: 2027-06-30",
            "+        reviewed: 2026-12-07"
        ],
        "{diff}"
    );
    assert!(diff.contains("@@ -33,0 +34,2 @@"), "{diff}");
    let message = git(&clone, &["log", "-1", "--format=%an <%ae>%n%B"]);
    assert!(message.starts_with("rosterd <rosterd@localhost>\neng-managers-and-pms: keep lara.brown@example.com in include until 2027-06-30 (access review)"), "{message}");
    assert!(message.contains("\nStill the platform PM\n"), "{message}");
    assert!(
        message.contains("Reviewed-by: it-ops@example.com\nDecision: keep"),
        "{message}"
    );
    check_and_test(&remote, &clone, "2026-12-07");

    let removed = json(
        &rosterd(&config)
            .args(REMOVE_SAM)
            .args(["--format", "json"])
            .output()
            .unwrap(),
    );
    let clone = remote.clone(removed["branch"].as_str().unwrap());
    let figma = std::fs::read_to_string(clone.join("rules/apps/figma.yaml")).unwrap();
    assert!(!figma.contains("sam.osei"), "{figma}");
    assert!(figma.contains("ingrid.weber@example.com"));
    // The removal starts from main, not from the branch of the keep before it.
    let managers = std::fs::read_to_string(clone.join("rules/org/managers.yaml")).unwrap();
    assert_eq!(
        managers,
        std::fs::read_to_string("rules/org/managers.yaml").unwrap()
    );
    check_and_test(&remote, &clone, "2026-12-07");

    // Both decisions are in the audit, with the commits they landed as.
    let audit = json(
        &rosterd(&config)
            .args(["decisions", "--format", "json"])
            .output()
            .unwrap(),
    );
    let records = audit["decisions"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["decision"], "keep");
    assert_eq!(records[0]["commit"], kept["commit"]);
    assert_eq!(records[0]["until"], "2027-06-30");
    assert_eq!(records[0]["comment"], "Still the platform PM");
    assert_eq!(records[1]["decision"], "remove");
    assert_eq!(records[1]["group"], "figma-admins");
    assert_eq!(records[1]["list"], "members");
    assert_eq!(records[1]["decided_by"], "design-ops@example.com");
    assert_eq!(records[1]["until"], serde_json::Value::Null);
    let out = rosterd(&config)
        .args(["decisions", "--group", "figma-admins", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,decided_at,decision,group,list,worker,decided_by,comment,until,request,branch,commit,direct_commit,link");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains(",remove,figma-admins,members,sam.osei@example.com,design-ops@example.com,Moved to sales,,,rosterd/remove-figma-admins-"), "{csv}");
    let later = json(
        &rosterd(&config)
            .args(["decisions", "--from", "2999-01-01", "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(later["decisions"].as_array().unwrap().len(), 0);

    // Proposals leave main as it was.
    assert_eq!(
        git(
            remote.dir.path(),
            &["ls-remote", &remote.url, "refs/heads/main"]
        ),
        main_before
    );
    assert_eq!(remote.branches().len(), 3, "{:?}", remote.branches());
}

#[test]
fn a_decision_that_would_fail_a_rule_test_or_the_group_limits_is_refused_and_nothing_is_pushed() {
    let Some(remote) = Remote::start() else {
        return;
    };
    let config = remote.config("");
    // The sample's rule test pins that the CISO assistant's grant ends after 2027-01-31.
    let out = rosterd(&config)
        .args([
            "review",
            "keep",
            "security-slack",
            "ben.hansen@example.com",
            "--by",
            "corpsec@example.com",
            "--until",
            "2027-02-28",
            "--as-of",
            "2026-12-07",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("would fail the rule tests"), "{err}");
    assert!(
        err.contains("the assistant's grant ends after its expiry date"),
        "{err}"
    );
    // Beyond the group's max_days (90).
    let out = rosterd(&config)
        .args([
            "review",
            "keep",
            "security-slack",
            "ben.hansen@example.com",
            "--by",
            "corpsec@example.com",
            "--until",
            "2027-12-31",
            "--as-of",
            "2026-12-07",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("grants at most 90 days: until 2027-03-07, not 2027-12-31"),
        "{err}"
    );
    // A managed group takes nobody by hand; an entry that is not there is not removed.
    let parsed = rosterd::config::Config::load(&config).unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let remove = |group: &str, who: &str| Decision::Remove {
        group: group.into(),
        who: Who::KeyOrEmail(who.into()),
        by: "corpsec@example.com".into(),
        comment: String::new(),
    };
    assert!(matches!(
        access::land(&parsed, &remove("platform-org", "E000001"), today),
        Err(LandError::Managed(_))
    ));
    let err = access::land(
        &parsed,
        &remove("figma-admins", "nobody@example.com"),
        today,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "group `figma-admins` has no `members` entry for nobody@example.com"
    );
    // A request without the justification the group requires.
    let grant = Decision::Grant {
        group: "security-slack".into(),
        grant: Grant {
            who: Who::Email("ana.costa@example.com".into()),
            reason: Some("  ".into()),
            ticket: Some("REQ-1".into()),
            expires: Some(NaiveDate::from_ymd_opt(2027, 1, 15).unwrap()),
            added_by: Some("corpsec@example.com".into()),
            reviewed: Some(today),
        },
        requested_by: "ana.costa@example.com".into(),
        approved_by: "corpsec@example.com".into(),
        request: "REQ-1".into(),
    };
    let err = access::land(&parsed, &grant, today).unwrap_err();
    assert_eq!(
        err.to_string(),
        "group `security-slack` requires a justification"
    );
    assert_eq!(remote.branches(), vec!["main".to_string()]);
}

#[test]
fn a_granted_request_commits_to_main_directly_when_configured_after_someone_else_pushed() {
    let Some(remote) = Remote::start() else {
        return;
    };
    let config = remote.config("  direct_commit: true\n");
    let parsed = rosterd::config::Config::load(&config).unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let grant = |who: &str, request: &str| Decision::Grant {
        group: "security-slack".into(),
        grant: Grant {
            who: Who::Email(who.into()),
            reason: Some("Joins the incident rotation: \"sev1\" bridge".into()),
            ticket: Some(request.into()),
            expires: Some(NaiveDate::from_ymd_opt(2027, 1, 15).unwrap()),
            added_by: Some("corpsec@example.com".into()),
            reviewed: Some(today),
        },
        requested_by: who.to_string(),
        approved_by: "corpsec@example.com".into(),
        request: request.into(),
    };
    let first = access::land(&parsed, &grant("ana.costa@example.com", "REQ-1"), today).unwrap();
    assert!(first.direct);
    assert_eq!(first.branch, "main");
    // Someone else pushes to main; rosterd's clone is behind and starts from theirs.
    let other = remote.clone("main");
    std::fs::write(other.join("rules/README"), "kept by CorpSec\n").unwrap();
    git(&other, &["add", "."]);
    git(&other, &["commit", "--quiet", "-m", "A note"]);
    git(&other, &["push", "--quiet", "origin", "main"]);
    let second = access::land(&parsed, &grant("ben.okafor@example.com", "REQ-2"), today).unwrap();
    let clone = remote.clone("main");
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), second.commit);
    let log = git(&clone, &["log", "--format=%s"]);
    assert_eq!(
        log.lines().take(3).collect::<Vec<_>>(),
        [
            "security-slack: add email: ben.okafor@example.com to include until 2027-01-15",
            "A note",
            "security-slack: add email: ana.costa@example.com to include until 2027-01-15",
        ]
    );
    let body = git(&clone, &["log", "-1", "--format=%B"]);
    assert!(body.contains("Requested-by: ben.okafor@example.com\nApproved-by: corpsec@example.com\nRequest: REQ-2"), "{body}");
    let slack = std::fs::read_to_string(clone.join("rules/comms/security-slack.yaml")).unwrap();
    assert!(slack.contains("      - email: ana.costa@example.com\n        reason: \"Joins the incident rotation: \\\"sev1\\\" bridge\"\n        ticket: REQ-1\n        expires: 2027-01-15\n        added_by: corpsec@example.com\n        reviewed: 2026-12-07\n"), "{slack}");
    check_and_test(&remote, &clone, "2026-12-07");
    // The sample's reviews no longer list what was just granted and reviewed.
    let reviews = json(
        &rosterd(&clone.join("rosterd.yaml"))
            .args(["reviews", "--as-of", "2026-12-07", "--format", "json"])
            .output()
            .unwrap(),
    );
    let due: Vec<&str> = reviews["due"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["who"].as_str().unwrap())
        .collect();
    assert!(due.contains(&"email: ben.hansen@example.com"), "{due:?}");
    assert!(!due.iter().any(|w| w.contains("ana.costa")), "{due:?}");
}

#[test]
fn a_token_reaches_git_only_through_its_environment_and_never_an_error() {
    let Some(remote) = Remote::start() else {
        return;
    };
    let config = remote.config("").to_string_lossy().to_string();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&remote.url, "http://127.0.0.1:9/rules.git")
        .replace(
            "    path: rules\n",
            "    path: rules\n    token_env: ROSTERD_TEST_GIT_TOKEN\n",
        );
    std::fs::write(&config, text).unwrap();
    let run = |token: Option<&str>| {
        let mut cmd = rosterd(Path::new(&config));
        cmd.args([
            "review",
            "remove",
            "figma-admins",
            "sam.osei@example.com",
            "--by",
            "design-ops@example.com",
            "--as-of",
            "2026-12-07",
        ]);
        match token {
            Some(t) => cmd.env("ROSTERD_TEST_GIT_TOKEN", t),
            None => cmd.env_remove("ROSTERD_TEST_GIT_TOKEN"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(None);
    assert!(err.contains("`ROSTERD_TEST_GIT_TOKEN` is not set"), "{err}");
    let err = run(Some("s3cr3t-t0ken-value"));
    assert!(err.contains("git clone"), "{err}");
    assert!(!err.contains("s3cr3t-t0ken-value"), "{err}");
    // Basic auth of x-access-token:TOKEN, base64.
    assert!(!err.contains("eC1hY2Nlc3MtdG9rZW46czNjcjN0"), "{err}");

    // The same from a file (a mounted secret): a missing file is named, the token never is.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("token_env: ROSTERD_TEST_GIT_TOKEN", "token_file: git-token");
    std::fs::write(&config, text).unwrap();
    let err = run(None);
    assert!(
        err.contains("requests.repository.token_file: cannot read") && err.contains("git-token"),
        "{err}"
    );
    let file = Path::new(&config).parent().unwrap().join("git-token");
    std::fs::write(&file, "s3cr3t-t0ken-value\n").unwrap();
    let err = run(None);
    assert!(err.contains("git clone"), "{err}");
    assert!(
        !err.contains("s3cr3t-t0ken-value") && !err.contains("eC1hY2Nlc3MtdG9rZW46czNjcjN0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_kept_and_read_by_group_and_period_on_sqlite_and_postgresql() {
    use rosterd::store::{AccessDecision, DecisionRecord, Store};
    for db in common::all_dbs().await {
        let store = Store::open(&db.url).await.unwrap();
        let made = |id, at: &str, decision, group: &str| DecisionRecord {
            id,
            decided_at: at.into(),
            decision,
            group: group.into(),
            list: "include".into(),
            worker: "ana.costa@example.com".into(),
            decided_by: "corpsec@example.com".into(),
            comment: "Still on the incident rotation; \"sev1\", ünïcödé".into(),
            until: Some("2027-03-01".into()),
            request: None,
            branch: Some("main".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            direct_commit: id == 2,
            link: None,
        };
        let all = [
            made(
                1,
                "2026-11-30T23:59:59Z",
                AccessDecision::Grant,
                "security-slack",
            ),
            made(
                2,
                "2026-12-01T00:00:00Z",
                AccessDecision::Keep,
                "security-slack",
            ),
            made(
                3,
                "2026-12-01T08:00:00Z",
                AccessDecision::Remove,
                "figma-admins",
            ),
        ];
        for d in &all {
            let id = store.record_decision(d).await.unwrap();
            assert_eq!(id, d.id, "{}", db.url);
        }
        assert_eq!(store.decisions(None, None, None).await.unwrap(), all);
        assert_eq!(
            store
                .decisions(Some("security-slack"), Some("2026-12-01"), None)
                .await
                .unwrap(),
            [all[1].clone()]
        );
        assert_eq!(
            store
                .decisions(None, None, Some("2026-11-30"))
                .await
                .unwrap(),
            [all[0].clone()]
        );
        assert!(store
            .decisions(Some("nobody"), None, None)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_told_once_signed_and_retried_after_a_500() {
    use hmac::Mac as _;
    let Some(remote) = Remote::start() else {
        return;
    };
    let (url, got) = common::hooks::receiver().await;
    let config = remote.config(&format!(
        "notifications:\n  retry_backoff_ms: 10\n  webhooks:\n    - {{ name: audit, url: '{url}/audit', secret_env: ROSTERD_TEST_HOOK_KEY }}\n    - {{ name: corpsec-slack, url_env: ROSTERD_TEST_SLACK_URL, format: slack, events: [decision] }}\n"
    ));
    let run = |args: Vec<&'static str>| {
        let config = config.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            rosterd(&config)
                .args(args)
                .env("ROSTERD_TEST_HOOK_KEY", "hook-key-not-for-bodies")
                .env(
                    "ROSTERD_TEST_SLACK_URL",
                    format!("{url}/slack-T000-B000-xyz"),
                )
                .output()
                .unwrap()
        })
    };
    let out = run(REMOVE_SAM.to_vec()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec!["reviews", "--notify", "--as-of", "2026-12-07"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = got.lock().unwrap().clone();
    // Three notifications (the decision to both hooks, reviews due to the one that takes
    // every event), each refused once and then taken: six tries, three delivered.
    assert_eq!(got.len(), 6, "{got:#?}");
    let taken: Vec<_> = got.iter().filter(|r| r.4 == 200).collect();
    assert_eq!(taken.len(), 3, "{got:#?}");
    for r in &got {
        assert!(
            !r.3.contains("hook-key-not-for-bodies") && !r.3.contains("slack-T000"),
            "{r:?}"
        );
    }
    let json: Vec<_> = taken
        .iter()
        .filter(|r| !r.0.is_empty() && r.3.starts_with("{\"at\""))
        .collect();
    assert_eq!(json.len(), 2, "{taken:#?}");
    for (event, delivery, signature, body, _) in json.iter().map(|r| (&r.0, &r.1, &r.2, &r.3, r.4))
    {
        // The retry carries the first try's delivery id.
        assert_eq!(got.iter().filter(|r| &r.1 == delivery).count(), 2);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(&v["event"], event.as_str());
        assert_eq!(&v["delivery"], delivery.as_str());
        let (t, mac) = signature.split_once(",v1=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mut expected =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-key-not-for-bodies").unwrap();
        expected.update(format!("{t}.{body}").as_bytes());
        let hex: String = expected
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(mac, hex, "signature of {body}");
        match event.as_str() {
            "decision" => {
                assert_eq!(v["data"]["decision"], "remove");
                assert_eq!(v["data"]["group"], "figma-admins");
                assert_eq!(v["data"]["comment"], "Moved to sales");
            }
            "reviews_due" => {
                assert_eq!(v["data"]["as_of"], "2026-12-07");
                assert!(v["data"]["due"].as_array().unwrap().len() >= 5, "{v}");
            }
            other => panic!("unexpected event {other}"),
        }
    }
    let slack: Vec<_> = taken
        .iter()
        .filter(|r| r.3.starts_with("{\"text\""))
        .collect();
    assert_eq!(slack.len(), 1, "{taken:#?}");
    assert!(slack[0].3.contains("design-ops@example.com decided *remove* of sam.osei@example.com in `figma-admins` (members)"), "{}", slack[0].3);
    assert!(slack[0].2.is_empty(), "no key, no signature");
}

/// The daemon finds approved requests merged by their tickets on the main branch, all in one
/// fetch and one `git grep`, each as a whole value: `…/requests/1` is not `…/requests/12`.
#[test]
fn tickets_on_the_main_branch_are_found_each_as_a_whole_value() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "-b", "main", "seed"]);
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(seed.join("rules")).unwrap();
    std::fs::write(
        seed.join("rules/g.yaml"),
        "groups:\n  - name: g\n    kind: manual\n    members:\n      - id: W1\n        ticket: https://rosterd.example.com/requests/12\n",
    )
    .unwrap();
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "--quiet", "-m", "seed"]);
    let config: rosterd::config::RequestsConfig = serde_yaml::from_str(&format!(
        "{{repository: {{remote: '{}', path: rules}}, workdir: '{}'}}",
        seed.display(),
        dir.path().join("work").display()
    ))
    .unwrap();
    let repo = access::git::Repo::new(&config).unwrap();
    let ticket = |n: u32| format!("https://rosterd.example.com/requests/{n}");
    let found = repo
        .branch_has(Path::new("rules"), &[ticket(1), ticket(12), ticket(3)])
        .unwrap();
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [ticket(12)]);
    let none = repo.branch_has(Path::new("rules"), &[ticket(3)]).unwrap();
    assert!(none.is_empty());
}
