//! The web console in a real browser: Debian's chromium driven over WebDriver (fantoccini and
//! chromedriver), signing in at a real OpenID provider (`oidc-provider` from npm, run from
//! scripts/oidc-provider), against a real `rosterd run` whose emulator target holds a push.
//! `scripts/test` installs the provider and the browser and sets `ROSTERD_TEST_OIDC_PROVIDER`,
//! `ROSTERD_TEST_CHROMEDRIVER` and `ROSTERD_TEST_CHROMIUM`; with CI=true a missing one fails.
//! Each scenario saves a screenshot under `target/console/`. The two browser journeys run on
//! SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{eventually, free_port, Daemon, TOKEN};
use common::world::{World, TARGET_OPTIONS};
use fantoccini::{Client, Locator};
use rosterd::scim::emulator::{FaultKind, Faults};
use rosterd::store::{NewRequest, RequestState};

const CLIENT_SECRET: &str = "console-test-client-secret-7c2d";

/// The provider, the driver and the browser, as `scripts/test` installed them.
struct Parts {
    provider: PathBuf,
    chromedriver: PathBuf,
    chromium: PathBuf,
}

fn parts() -> Option<Parts> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("ROSTERD_TEST_OIDC_PROVIDER"),
        var("ROSTERD_TEST_CHROMEDRIVER"),
        var("ROSTERD_TEST_CHROMIUM"),
    ) {
        (Some(p), Some(d), Some(c)) => Some(Parts {
            provider: p.into(),
            chromedriver: d.into(),
            chromium: c.into(),
        }),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but ROSTERD_TEST_OIDC_PROVIDER, ROSTERD_TEST_CHROMEDRIVER or ROSTERD_TEST_CHROMIUM is not set: run the suite with scripts/test"
            );
            eprintln!("no OpenID provider or browser (run the suite with scripts/test): skipping the console scenarios");
            None
        }
    }
}

/// A helper process, killed when the test ends.
struct Helper {
    child: Child,
    log: PathBuf,
}

impl Helper {
    fn start(mut command: Command, log: PathBuf, port: u16) -> Helper {
        let child = command
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let helper = Helper { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{command:?} did not listen on {port} within 30 s; its log:\n{}",
                std::fs::read_to_string(&helper.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        helper
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one scenario needs: a world pushed to the emulator, its daemon with the
/// console on, the provider that signs people in, and a driver for the browser.
struct Stage {
    world: World,
    daemon: Daemon,
    console: String,
    /// The provider's issuer URL.
    provider: String,
    approver_email: String,
    hybrid_member: String,
    parts: Parts,
    _provider: Helper,
    driver: Helper,
    driver_port: u16,
    /// A second `rosterd run` on the same PostgreSQL database, on standby, and its console.
    standby: Option<(Daemon, String)>,
    /// A worker who is neither approver nor viewer, and asks for access.
    requester: rosterd::directory::generate::Worker,
    /// With access requests on: the rules repository's remote (served by git-daemon), and
    /// the webhook receiver.
    requests: Option<Requests>,
}

struct Requests {
    url: String,
    _git_daemon: Helper,
    hooks: common::hooks::Received,
}

const HOOK_KEY: &str = "console-hook-key-not-for-bodies";

const RULES: &str = r#"
groups:
  - name: corpsec-approvers
    kind: manual
    requests:
      approvers: [group: corpsec-approvers]
    members:
      - email: APPROVER
        reason: CorpSec approves held pushes
  - name: platform-access
    kind: hybrid
    description: Engineering, plus those given access by ticket
    rule: division == "Engineering"
    include:
      - id: INCLUDED
        reason: Works on the platform migration
        ticket: SEC-4242
        expires: 2099-12-31
    requests:
      approvers: [group: corpsec-approvers]
      max_days: 30
      justification: required
    push: [app]
guardrails:
  - name: sales-is-small
    description: Sales has a handful of members in this test, so a run holds its push
    group: sales
    max_members: 1
"#;

impl Stage {
    async fn new(name: &str, db: common::TestDb) -> Option<Stage> {
        Stage::with(name, db, false).await
    }

    /// With `standby`, a second daemon on the same (PostgreSQL) database stands by.
    async fn with(name: &str, db: common::TestDb, standby: bool) -> Option<Stage> {
        Stage::build(name, db, standby, false).await
    }

    /// With `requests`, the rules folder is a clone of a repository that `git daemon` serves,
    /// and access requests land there; webhooks go to a receiver.
    async fn build(name: &str, db: common::TestDb, standby: bool, requests: bool) -> Option<Stage> {
        let parts = parts()?;
        let git_daemon = match requests {
            true => Some(common::git_daemon()?),
            false => None,
        };
        let world = World::with_emulator(db, 60, &[]).await;
        let active = |pred: &dyn Fn(&rosterd::directory::generate::Worker) -> bool| {
            world
                .workers
                .iter()
                .find(|w| w.status == "Active" && pred(w))
                .unwrap()
                .clone()
        };
        let approver = active(&|w| w.division == "Engineering");
        let included = active(&|w| w.division != "Engineering");
        let requester = active(&|w| w.division != "Engineering" && w.id != included.id);
        let mut rules = RULES
            .replace("APPROVER", &approver.email)
            .replace("INCLUDED", &included.id);
        if requests {
            // No push is held there: the commits are checked whole, guardrails too.
            rules.truncate(rules.find("guardrails:").unwrap());
        }
        std::fs::write(world.path("rules/console.yaml"), rules).unwrap();

        let port = free_port();
        let standby_port = free_port();
        let provider_port = free_port();
        let console = format!("http://127.0.0.1:{port}");
        let standby_console = format!("http://127.0.0.1:{standby_port}");
        let users = serde_json::json!({
            "approver": { "email": approver.email, "name": "Ada Approver", "groups": [] },
            "viewer": { "email": "vic.viewer@example.com", "name": "Vic Viewer", "groups": ["it-support"] },
            "requester": { "email": requester.email, "name": "Rae Quester", "groups": [] },
            // Claims the approver's address, which the provider has not verified.
            "stranger": { "email": approver.email, "email_verified": false, "name": "Sam Stranger", "groups": ["contractors"] },
            // In it-support, but in so many groups that the provider leaves them out of the
            // token (Entra ID's overage).
            "crowded": { "email": "cro.wded@example.com", "name": "Cro Wded", "groups": ["it-support"], "groups_elsewhere": true },
            // The edges of sign-in: the approver's address without `email_verified`, with it
            // as the text "true", with it as neither; a token issued ten minutes ahead.
            "unsaid": { "email": approver.email, "email_verified": null, "name": "Una Said", "groups": [] },
            "texted": { "email": approver.email, "email_verified": "true", "name": "Tex Ted", "groups": [] },
            "garbled": { "email": approver.email, "email_verified": "yes", "name": "Gar Bled", "groups": [] },
            "early": { "email": "ear.ly@example.com", "name": "Ear Ly", "groups": ["it-support"], "iat_ahead": 600 },
        });
        std::fs::write(world.path("users.json"), users.to_string()).unwrap();
        let mut node = Command::new("node");
        node.arg(&parts.provider)
            .args(["--port", &provider_port.to_string()])
            .args(["--redirect", &format!("{console}/auth/callback")])
            .args(["--redirect", &format!("{standby_console}/auth/callback")])
            .arg("--users")
            .arg(world.path("users.json"))
            .args(["--client-secret", CLIENT_SECRET]);
        let provider = Helper::start(node, world.path("provider.log"), provider_port);

        let requests = match git_daemon {
            Some(bin) => Some(serve_rules(&world, bin).await),
            None => None,
        };
        let extra = match &requests {
            Some(r) => format!(
                "requests:\n  repository:\n    remote: {}\n    path: .\n  workdir: {}\nnotifications:\n  retry_backoff_ms: 10\n  webhooks:\n    - {{ name: audit, url: '{}/audit', secret_env: ROSTERD_TEST_HOOK_KEY }}\n",
                r.url,
                world.path("work").display(),
                r.hook_url
            ),
            None => String::new(),
        };
        world.write_config(
            &format!(
                "{extra}daemon:\n  sync: \"0 0 4 * * *\"\n  reconcile: \"0 0 3 * * *\"\n  listen: 127.0.0.1:{port}\n  shutdown_timeout_seconds: 2\n\
ui:\n  issuer: http://127.0.0.1:{provider_port}\n  client_id: rosterd-console\n  client_secret_env: ROSTERD_TEST_OIDC_SECRET\n  redirect_url: {console}/auth/callback\n  scopes: [openid, email, profile, groups]\n  viewers:\n    - claim: it-support\n  approvers:\n    - group: corpsec-approvers\n"
            ),
            TARGET_OPTIONS,
        );
        if requests.is_some() {
            // A merged request is synced a second after the daemon reloads the rules.
            let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
            let config = config.replace(
                "daemon:\n",
                "daemon:\n  sync_after_rules_change_seconds: 1\n",
            );
            std::fs::write(world.path("rosterd.yaml"), config).unwrap();
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        command
            .args(["run", "--config"])
            .arg(world.path("rosterd.yaml"))
            .env("ROSTERD_TEST_OIDC_SECRET", CLIENT_SECRET)
            .env("ROSTERD_TEST_HOOK_KEY", HOOK_KEY);
        let daemon = Daemon::spawn(&world, "rosterd", port, command);
        daemon.ready().await;
        // The leader syncs when it takes over; the guardrail holds sales.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, body) = daemon.get("/api/v1/holds", Some(TOKEN)).await;
            if body.contains("\"held\"") && body.contains("\"sales\"") {
                break;
            }
            if requests.is_some() && runs_recorded(&daemon).await > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the first sync did not hold the sales push within 60 s; the daemon's log:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let standby = if standby {
            let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
            std::fs::write(
                world.path("standby.yaml"),
                // This console signs people out of itself only.
                config
                    .replace(
                        &format!("127.0.0.1:{port}"),
                        &format!("127.0.0.1:{standby_port}"),
                    )
                    .replace("ui:\n", "ui:\n  sign_out_at_provider: false\n"),
            )
            .unwrap();
            let mut command = Command::new(env!("CARGO_BIN_EXE_rosterd"));
            command
                .args(["run", "--config"])
                .arg(world.path("standby.yaml"))
                .env("ROSTERD_TEST_OIDC_SECRET", CLIENT_SECRET);
            let b = Daemon::spawn(&world, "standby", standby_port, command);
            b.ready().await;
            assert!(!b.leading().await, "the second daemon stands by");
            Some((b, standby_console))
        } else {
            None
        };

        let driver_port = free_port();
        let mut chromedriver = Command::new(&parts.chromedriver);
        chromedriver.arg(format!("--port={driver_port}"));
        let driver = Helper::start(
            chromedriver,
            world.path(&format!("chromedriver-{name}.log")),
            driver_port,
        );
        Some(Stage {
            hybrid_member: included.id,
            approver_email: approver.email.to_lowercase(),
            world,
            daemon,
            console,
            provider: format!("http://127.0.0.1:{provider_port}"),
            parts,
            _provider: provider,
            driver,
            driver_port,
            standby,
            requester,
            requests: requests.map(|r| Requests {
                url: r.url,
                _git_daemon: r.helper,
                hooks: r.hooks,
            }),
        })
    }

    /// A new browser with its own empty profile.
    async fn browser(&self, profile: &str) -> Client {
        let profile = self.world.path(&format!("chromium-{profile}"));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": self.parts.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.driver_port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromium through chromedriver: {e}; its log:\n{}",
                    std::fs::read_to_string(&self.driver.log).unwrap_or_default()
                )
            })
    }

    /// Signs `login` in at the provider's own form, starting from `path` on the console;
    /// the browser ends on `path`.
    async fn sign_in(&self, browser: &Client, login: &str, path: &str, shot: &str) {
        self.sign_in_at(&self.console, browser, login, path, shot)
            .await;
    }

    /// [`Stage::sign_in`] at the console at `console`.
    async fn sign_in_at(
        &self,
        console: &str,
        browser: &Client,
        login: &str,
        path: &str,
        shot: &str,
    ) {
        browser.goto(&format!("{console}{path}")).await.unwrap();
        let at = browser.current_url().await.unwrap();
        assert!(
            !at.as_str().starts_with(console),
            "a visitor without a session is sent to the provider, not shown {at}"
        );
        assert!(
            at.path().starts_with("/interaction/"),
            "the provider's sign-in form: {at}"
        );
        screenshot(browser, shot).await;
        let back = url::Url::parse(&format!("{console}{path}")).unwrap();
        at_provider_sign_in(browser, login, |at| *at == back).await;
    }

    /// The session cookie and the CSRF token of the signed-in browser.
    async fn session(&self, browser: &Client) -> (String, String) {
        let cookie = browser.get_named_cookie("rosterd-session").await.unwrap();
        assert_eq!(
            cookie.http_only(),
            Some(true),
            "the session cookie is HttpOnly"
        );
        assert_eq!(
            cookie.same_site().map(|s| s.to_string()).as_deref(),
            Some("Lax"),
            "the session cookie is SameSite=Lax"
        );
        let csrf = browser
            .find(Locator::Css("form[action='/auth/logout'] input[name=csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        (format!("rosterd-session={}", cookie.value()), csrf)
    }

    /// A POST outside the browser with `cookie` and, when given, a CSRF token: the status.
    async fn forged_post(&self, path: &str, cookie: &str, csrf: Option<&str>) -> u16 {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = http
            .post(format!("{}{path}", self.console))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded");
        request = match csrf {
            Some(t) => request.body(format!("csrf={t}")),
            None => request.body(""),
        };
        request.send().await.unwrap().status().as_u16()
    }

    async fn held_sales(&self) -> serde_json::Value {
        let (_, body) = self.daemon.get("/api/v1/holds", Some(TOKEN)).await;
        let holds: serde_json::Value = serde_json::from_str(&body).unwrap();
        holds["holds"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|h| h["group"] == "sales")
            .cloned()
            .unwrap()
    }
}

/// The world's rules folder made a clone of a bare repository that `git daemon` serves.
struct Served {
    url: String,
    helper: Helper,
    hook_url: String,
    hooks: common::hooks::Received,
}

async fn serve_rules(world: &World, git_daemon: PathBuf) -> Served {
    let rules = world.path("rules");
    let remote = world.path("remote");
    std::fs::create_dir_all(&remote).unwrap();
    common::git(&rules, &["init", "--quiet", "-b", "main"]);
    common::git(&rules, &["add", "."]);
    common::git(&rules, &["commit", "--quiet", "-m", "The console's rules"]);
    common::git(
        &remote,
        &[
            "clone",
            "--quiet",
            "--bare",
            rules.to_str().unwrap(),
            "rules.git",
        ],
    );
    let port = free_port();
    let command = common::git_daemon_command(&git_daemon, &remote, port);
    let helper = Helper::start(command, world.path("git-daemon.log"), port);
    let url = format!("git://127.0.0.1:{port}/rules.git");
    common::git(&rules, &["remote", "add", "origin", &url]);
    let (hook_url, hooks) = common::hooks::receiver().await;
    Served {
        url,
        helper,
        hook_url,
        hooks,
    }
}

/// At the provider: signs `login` in on its form (unless its session already has them),
/// consents if asked, and waits until the browser is where `arrived` says.
async fn at_provider_sign_in(browser: &Client, login: &str, arrived: impl Fn(&url::Url) -> bool) {
    let mut submitted = false;
    // The provider asks for consent once per client, then sends the browser back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let at = browser.current_url().await.unwrap();
        if arrived(&at) {
            break;
        }
        if !submitted {
            if let Ok(field) = browser.find(Locator::Css("input[name=login]")).await {
                field.send_keys(login).await.unwrap();
                browser
                    .find(Locator::Css("input[name=password]"))
                    .await
                    .unwrap()
                    .send_keys("any password")
                    .await
                    .unwrap();
                click(browser, "button[type=submit]").await;
                submitted = true;
                continue;
            }
        }
        assert!(
            Instant::now() < deadline,
            "signing in as {login} did not arrive; at {at}, which says:\n{}",
            browser.source().await.unwrap()
        );
        // The provider's consent page is titled "Authorize".
        if browser.source().await.unwrap().contains("Authorize") {
            if let Ok(button) = browser.find(Locator::Css("button[type=submit]")).await {
                let _ = button.click().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Clicks what `css` finds and waits for the page it leads to.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn click_to(browser: &Client, css: &str, url: &str) {
    click(browser, css).await;
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_url(url::Url::parse(url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("clicking {css} did not lead to {url}: {e}"));
}

/// A group page's member search and CSV export, in the signed-in browser: a member's
/// address (in other case) finds them alone; the export holds every stored member once.
async fn members_search_and_export(
    stage: &Stage,
    browser: &Client,
    expected: &std::collections::BTreeSet<String>,
) {
    let key = expected.iter().nth(1).unwrap().clone();
    let member = stage.world.workers.iter().find(|w| w.id == key).unwrap();
    browser
        .find(Locator::Css("form.search input[name=q]"))
        .await
        .unwrap()
        .send_keys(&member.email.to_uppercase())
        .await
        .unwrap();
    click(browser, "form.search button[type=submit]").await;
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("form.search a[href='/groups/engineering']"))
        .await
        .unwrap();
    assert_eq!(listed_workers(browser).await, [key.clone()].into());
    let page = text(browser).await;
    assert!(
        page.contains(&format!("1 of {} members match", expected.len())),
        "{page}"
    );
    screenshot(browser, "03-group-members-search").await;
    let csv = exported(stage, browser).await;
    assert_eq!(csv[0], "key,name,email,reason,since_run,ticket,expires");
    let keys: std::collections::BTreeSet<String> = csv[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(csv.len() - 1, expected.len(), "one row a member");
    assert_eq!(
        &keys, expected,
        "the export is the whole group, not the search"
    );
    let row = csv
        .iter()
        .find(|l| l.starts_with(&format!("{key},")))
        .unwrap();
    assert!(row.contains(&member.email) && row.contains("rule"), "{row}");
}

/// The lines of the CSV file the page's export link offers (`a.export`, a download), as the
/// signed-in browser gets it: with its session cookie (the console's CSP lets no script
/// fetch, so the file is asked for beside the browser, as it would download it). Without
/// the session the link leads to sign-in, not to the file.
async fn exported(stage: &Stage, browser: &Client) -> Vec<String> {
    let link = browser.find(Locator::Css("a.export")).await.unwrap();
    assert!(link.attr("download").await.unwrap().is_some(), "a download");
    let href = link.attr("href").await.unwrap().unwrap();
    let cookie = browser.get_named_cookie("rosterd-session").await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}{href}", stage.console);
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(
        anonymous.status().as_u16(),
        303,
        "no file without a session"
    );
    let answer = http
        .get(&url)
        .header("cookie", format!("rosterd-session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let headers = answer.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"engineering-"),
        "{headers:?}"
    );
    answer
        .text()
        .await
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The worker keys a page's table links to.
async fn listed_workers(browser: &Client) -> std::collections::BTreeSet<String> {
    let mut shown = std::collections::BTreeSet::new();
    for row in browser
        .find_all(Locator::Css("table tr td:first-child a[href^='/workers/']"))
        .await
        .unwrap()
    {
        let href = row.attr("href").await.unwrap().unwrap();
        let key = href.trim_start_matches("/workers/").split('?').next();
        shown.insert(key.unwrap().to_string());
    }
    shown
}

/// How many runs the daemon has recorded.
async fn runs_recorded(daemon: &Daemon) -> usize {
    let (_, body) = daemon.get("/api/v1/runs", Some(TOKEN)).await;
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    runs["runs"].as_array().unwrap().len()
}

/// The newest sync's id, once its `run finished` line is logged.
async fn newest_sync(daemon: &Daemon, after: i64) -> i64 {
    let newest = async || {
        let (_, body) = daemon.get("/api/v1/runs", Some(TOKEN)).await;
        let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "sync")
            .and_then(|r| r["id"].as_i64())
            .unwrap_or(0)
    };
    eventually(60, "a sync to finish", || async {
        let id = newest().await;
        id > after && finished_line(&daemon.log(), id).is_some()
    })
    .await;
    newest().await
}

/// The daemon's `run finished` line for run `id`.
fn finished_line(log: &str, id: i64) -> Option<String> {
    log.lines()
        .find(|l| l.contains("run finished") && l.contains(&format!(" run={id} ")))
        .map(str::to_string)
}

/// Run `id`'s outcome as `rosterd runs --format json` tells it.
fn cli_outcome(stage: &Stage, id: i64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["runs", "--format", "json", "--limit", "50", "--config"])
        .arg(stage.world.path("rosterd.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = runs.as_array().or(runs["runs"].as_array()).unwrap().clone();
    let run = list.iter().find(|r| r["id"] == id).unwrap();
    run["outcome"].as_str().unwrap().to_string()
}

/// Run `id`'s outcome as the API and the console's runs page tell it.
async fn api_and_console_outcome(stage: &Stage, browser: &Client, id: i64) -> (String, String) {
    let (_, body) = stage.daemon.get("/api/v1/runs", Some(TOKEN)).await;
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap();
    browser
        .goto(&format!("{}/runs", stage.console))
        .await
        .unwrap();
    let cell = browser
        .find(Locator::XPath(&format!(
            "//tr[td/a[@href='/runs/{id}']]/td[3]"
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (run["outcome"].as_str().unwrap().to_string(), cell)
}

/// One account of run `id`: `rosterd runs --format json`, `GET /api/v1/runs`, the console's
/// runs page, the metrics and the `run finished` line all say `outcome`.
async fn one_account(stage: &Stage, browser: &Client, id: i64, outcome: &str) {
    assert_eq!(cli_outcome(stage, id), outcome, "rosterd runs, run {id}");
    let (api, console) = api_and_console_outcome(stage, browser, id).await;
    assert_eq!(api, outcome, "GET /api/v1/runs, run {id}");
    assert_eq!(
        console,
        outcome.replace('_', " "),
        "the console's runs page, run {id}"
    );
    let metrics = stage.daemon.get("/metrics", Some(TOKEN)).await.1;
    let series = format!("rosterd_runs_total{{kind=\"sync\",outcome=\"{outcome}\"}} ");
    assert!(
        metrics.lines().any(|l| l.starts_with(&series)),
        "no {series} in:\n{metrics}"
    );
    let line = finished_line(&stage.daemon.log(), id).unwrap();
    assert!(
        line.contains(&format!("outcome=\"{outcome}\""))
            || line.contains(&format!("outcome={outcome} ")),
        "the run finished line: {line}"
    );
}

async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// An approver signs in through the provider's form, sees the overview, a group's members
/// as the store holds them, a worker's explain tree for a hybrid group's include entry with
/// its ticket, approves the held push (which a sync then sends), and signs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_explains_approves_and_signs_out() {
    for db in common::all_dbs().await {
        approver_journey(db).await;
    }
}

async fn approver_journey(db: common::TestDb) {
    let Some(mut stage) = Stage::new("approver", db).await else {
        return;
    };
    let browser = stage.browser("approver").await;

    // Sign-in redirect, the provider's form, back on the overview.
    stage
        .sign_in(&browser, "approver", "/", "01-sign-in-at-the-provider")
        .await;
    let overview = text(&browser).await;
    for expected in [
        "Overview",
        "Rules in force",
        "Targets",
        "Held",
        "Last runs",
        "approver",
    ] {
        assert!(
            overview.contains(expected),
            "the overview shows {expected:?}:\n{overview}"
        );
    }
    assert!(
        overview.contains("sales → app"),
        "the held push is listed:\n{overview}"
    );
    // The run that held it says so, as `rosterd runs` does, with why.
    assert!(
        overview.contains("succeeded with held pushes")
            && overview.contains("1 push held until approved: sales → app"),
        "the run's outcome:\n{overview}"
    );
    screenshot(&browser, "02-overview").await;
    // Every surface tells that run the same way.
    let first = newest_sync(&stage.daemon, 0).await;
    one_account(&stage, &browser, first, "succeeded_with_held_pushes").await;

    // A group's page lists the members the store holds, with reasons.
    let store = stage.world.store().await;
    let stored = store.group_memberships("engineering").await.unwrap();
    assert!(stored.len() > 3, "a group with members to show");
    browser
        .goto(&format!("{}/groups/engineering", stage.console))
        .await
        .unwrap();
    let expected: std::collections::BTreeSet<String> = stored.keys().cloned().collect();
    assert_eq!(
        listed_workers(&browser).await,
        expected,
        "the group page lists exactly the stored members"
    );
    let page = text(&browser).await;
    assert!(page.contains("Definition") && page.contains("division == \"Engineering\""));
    // Its push says when the target was last read back, as `rosterd status` does: made by
    // the first sync, whose answer listed what it holds.
    assert!(page.contains("Read back"), "{page}");
    assert!(page.contains(": as pushed"), "{page}");
    screenshot(&browser, "03-group-members").await;
    members_search_and_export(&stage, &browser, &expected).await;

    // Who was a member on a date, from the audit: today, the stored members; before the
    // first run, nobody; a date that is not one is refused with what is wrong.
    let today = rosterd::clock::today_utc();
    browser
        .goto(&format!(
            "{}/groups/engineering/on?date={today}",
            stage.console
        ))
        .await
        .unwrap();
    assert_eq!(listed_workers(&browser).await, expected);
    screenshot(&browser, "03-group-members-on-a-date").await;
    // The same list, exported as the page offers it.
    let on_date = exported(&stage, &browser).await;
    assert_eq!(on_date[0], "key,name,email,reason,since_run");
    let keys: std::collections::BTreeSet<String> = on_date[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(keys, expected, "the date's export lists its members");
    browser
        .goto(&format!(
            "{}/groups/engineering/on?date=2000-01-01",
            stage.console
        ))
        .await
        .unwrap();
    assert!(text(&browser).await.contains(
        "Nobody: engineering had no members after the last run evaluated on or before 2000-01-01."
    ));
    browser
        .goto(&format!(
            "{}/groups/engineering/on?date=yesterday",
            stage.console
        ))
        .await
        .unwrap();
    assert!(text(&browser)
        .await
        .contains("date: `yesterday` is not a date; give it as YYYY-MM-DD"));

    // The first run's changes, by group, and one group's joins.
    browser
        .goto(&format!("{}/runs/1", stage.console))
        .await
        .unwrap();
    let run = text(&browser).await;
    assert!(
        run.contains("Membership changes by group") && run.contains("engineering"),
        "{run}"
    );
    browser
        .goto(&format!("{}/runs/1?group=engineering", stage.console))
        .await
        .unwrap();
    let joined = browser
        .find_all(Locator::Css("table tr td:first-child a[href^='/workers/']"))
        .await
        .unwrap()
        .len();
    assert_eq!(joined, stored.len(), "every member joined in the first run");
    // The API gives the same run counted per group, and one group's changes a page at a time.
    let (_, body) = stage.daemon.get("/api/v1/runs/1", Some(TOKEN)).await;
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    let engineering = run["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "engineering")
        .unwrap();
    assert_eq!(engineering["joined"], stored.len());
    assert_eq!(
        run["changes"].as_array().unwrap().len() as u64,
        run["total_changes"].as_u64().unwrap(),
        "a small run lists every change"
    );
    let (_, body) = stage
        .daemon
        .get("/api/v1/runs/1?group=engineering&page=1", Some(TOKEN))
        .await;
    let one: serde_json::Value = serde_json::from_str(&body).unwrap();
    let changes = one["changes"].as_array().unwrap();
    assert_eq!(changes.len(), stored.len());
    assert!(changes
        .iter()
        .all(|c| c["group"] == "engineering" && c["added"] == true));
    let (_, body) = stage
        .daemon
        .get("/api/v1/runs/1?group=engineering&page=2", Some(TOKEN))
        .await;
    assert!(body.contains("\"changes\": []"), "{body}");

    // The worker's page shows their HR record, as the export has it, their manager linked.
    browser
        .goto(&format!(
            "{}/workers/{}",
            stage.console, stage.hybrid_member
        ))
        .await
        .unwrap();
    let worker = stage
        .world
        .workers
        .iter()
        .find(|w| w.id == stage.hybrid_member)
        .unwrap();
    let record = browser
        .find(Locator::Css("table.record"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (attribute, value) in [
        ("division", worker.division.as_str()),
        ("department", worker.department.as_str()),
        ("title", worker.title.as_str()),
        ("status", worker.status.as_str()),
        ("location", worker.location.as_str()),
        ("email", worker.email.as_str()),
    ] {
        assert!(
            record
                .lines()
                .any(|l| l.starts_with(attribute) && l.ends_with(value)),
            "the HR record shows {attribute} {value}:\n{record}"
        );
    }
    if let Some(manager) = &worker.manager_id {
        let link = browser
            .find(Locator::Css("table.record a[href^='/workers/']"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(link, format!("/workers/{manager}"), "{record}");
    }
    screenshot(&browser, "04-worker-record").await;

    // A worker's explain tree for the hybrid group's include entry, with its ticket.
    browser
        .goto(&format!(
            "{}/workers/{}?group=platform-access",
            stage.console, stage.hybrid_member
        ))
        .await
        .unwrap();
    let explain = browser
        .find(Locator::Css("section.explain"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "platform-access",
        "MEMBER",
        "include entry",
        "ticket: SEC-4242",
        "division == \"Engineering\"",
    ] {
        assert!(
            explain.contains(expected),
            "the explain tree shows {expected:?}:\n{explain}"
        );
    }
    assert!(!explain.contains("NOT A MEMBER"), "{explain}");
    // And when they joined it, as `rosterd history` tells.
    let history = text(&browser).await;
    let history = &history[history.find("History in platform-access").unwrap()..];
    assert!(
        history
            .lines()
            .any(|l| l.starts_with("1 ") && l.ends_with(" joined include")),
        "{history}"
    );
    screenshot(&browser, "04-worker-explain").await;

    // The guardrail held sales from its first push: the group is in the target, empty.
    assert_eq!(
        stage.world.actual().await.get("sales").map(|m| m.len()),
        Some(0),
        "a held group is created without members"
    );

    // A POST without the CSRF token is refused, even from an approver.
    let (cookie, csrf) = stage.session(&browser).await;
    let hold = stage.held_sales().await;
    let id = hold["id"].as_i64().unwrap();
    assert_eq!(
        stage
            .forged_post(&format!("/holds/{id}/approve"), &cookie, None)
            .await,
        403,
        "an approval without the CSRF token"
    );
    assert_eq!(
        stage
            .forged_post(
                &format!("/holds/{id}/approve"),
                &cookie,
                Some("not-the-token")
            )
            .await,
        403,
        "an approval with a wrong CSRF token"
    );
    assert_eq!(
        stage.held_sales().await["status"],
        "held",
        "nothing was approved"
    );

    // The group's page shows the hold and leads to it.
    browser
        .goto(&format!("{}/groups/sales", stage.console))
        .await
        .unwrap();
    let group_page = text(&browser).await;
    assert!(
        group_page.contains(&format!("The push to app is held (hold {id}")),
        "{group_page}"
    );
    // Who was in sales today says the target did not hold them: the push is held.
    browser
        .goto(&format!(
            "{}/groups/sales/on?date={}",
            stage.console,
            rosterd::clock::today_utc()
        ))
        .await
        .unwrap();
    let on_date = text(&browser).await;
    assert!(
        on_date.contains(&format!("the push to `app` was held (hold {id}"))
            && on_date.contains("the target did not hold these members then"),
        "{on_date}"
    );
    click_to(
        &browser,
        &format!("a[href='/holds/{id}']"),
        &format!("{}/holds/{id}", stage.console),
    )
    .await;
    // The hold's page lists who would join, with why; approving asks to confirm the count.
    let hold_page = text(&browser).await;
    let held = stage.held_sales().await;
    assert!(
        hold_page.contains(&format!("Would join ({})", held["to_add"])),
        "{hold_page}"
    );
    assert!(hold_page.contains("joined in run "), "{hold_page}");
    assert!(
        hold_page.contains(&format!(
            "release removing {} and adding {} members of sales in app",
            held["to_remove"], held["to_add"]
        )),
        "{hold_page}"
    );
    screenshot(&browser, "05-hold-for-an-approver").await;
    // The API gives the same list.
    let (_, body) = stage
        .daemon
        .get(&format!("/api/v1/holds/{id}"), Some(TOKEN))
        .await;
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        detail["joining"].as_array().map(Vec::len),
        held["to_add"].as_u64().map(|n| n as usize),
        "{detail}"
    );
    // Without ticking the box the browser does not send the form; a POST without the count
    // is refused.
    assert_eq!(
        stage
            .forged_post(&format!("/holds/{id}/approve"), &cookie, Some(&csrf))
            .await,
        400,
        "an approval that does not confirm the count"
    );
    assert_eq!(stage.held_sales().await["status"], "held");
    click(&browser, "input[name='confirm']").await;
    click_to(
        &browser,
        &format!("form[action='/holds/{id}/approve'] button"),
        &format!("{}/holds?approved={id}", stage.console),
    )
    .await;
    let after = text(&browser).await;
    assert!(
        after.contains(&format!("Push hold {id} is approved")),
        "the page confirms:\n{after}"
    );
    assert!(
        browser
            .find_all(Locator::Css(&format!("form[action='/holds/{id}/approve']")))
            .await
            .unwrap()
            .is_empty(),
        "the approved hold has no Approve button any more"
    );
    screenshot(&browser, "06-approved").await;
    let approved = stage.held_sales().await;
    assert_eq!(
        approved["approved_by"],
        format!("oidc:approver ({})", stage.approver_email),
        "the approval records the OIDC subject and email: {approved}"
    );
    eventually(60, "the queued sync to send the approved push", || async {
        stage.held_sales().await["status"] == "released"
    })
    .await;
    // The hold is released as the push starts; its members arrive with it.
    eventually(30, "sales to reach the target once approved", || async {
        let actual = stage.world.actual().await;
        actual.get("sales").is_some_and(|m| !m.is_empty())
    })
    .await;
    // The run that sent the approved push succeeded, on every surface.
    let sent = newest_sync(&stage.daemon, first).await;
    one_account(&stage, &browser, sent, "succeeded").await;
    // `rosterd runs` names who approved.
    let runs = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["runs", "--config"])
        .arg(stage.world.path("rosterd.yaml"))
        .output()
        .unwrap();
    let runs = String::from_utf8_lossy(&runs.stdout);
    assert!(
        runs.contains(&format!(
            "hold {id} sales in app (+{} -0) approved 20",
            hold["to_add"]
        )) && runs.contains(&format!(
            "by oidc:approver ({}): released",
            stage.approver_email
        )),
        "rosterd runs shows the approval:\n{runs}"
    );

    // "Sync now" queues a sync, as the API's POST /api/v1/runs does.
    let runs_before = runs_recorded(&stage.daemon).await;
    browser.goto(&format!("{}/", stage.console)).await.unwrap();
    click_to(
        &browser,
        "form[action='/sync'] button",
        &format!("{}/?sync=queued", stage.console),
    )
    .await;
    assert!(text(&browser).await.contains("A sync is queued"));
    eventually(60, "the sync asked for in the console", || async {
        runs_recorded(&stage.daemon).await > runs_before
    })
    .await;
    let quiet = newest_sync(&stage.daemon, sent).await;
    one_account(&stage, &browser, quiet, "nothing_to_do").await;
    // The target stops answering: the next run failed, on every surface.
    stage.world.emulator().set_faults(
        common::world::TARGET,
        Faults {
            rate: 1.0,
            kinds: vec![FaultKind::Status(503)],
            ..Faults::default()
        },
    );
    assert_eq!(stage.daemon.post("/api/v1/runs").await.0, 202);
    let failed = newest_sync(&stage.daemon, quiet).await;
    one_account(&stage, &browser, failed, "failed").await;
    stage
        .world
        .emulator()
        .set_faults(common::world::TARGET, Faults::default());

    // Sign-out ends the session, then the provider's: it asks to confirm and sends the
    // browser back to the signed-out page.
    click(&browser, "form[action='/auth/logout'] button").await;
    let provider = stage.provider.clone();
    eventually(20, "the provider's sign-out page", || async {
        let at = browser.current_url().await.unwrap();
        at.as_str().starts_with(&provider) && at.path().starts_with("/session/end")
    })
    .await;
    // With the ID token as its hint (Okta wants it) and the page to come back to.
    let end = browser.current_url().await.unwrap();
    let asked: std::collections::BTreeMap<_, _> = end.query_pairs().into_owned().collect();
    assert_eq!(asked["client_id"], "rosterd-console", "{end}");
    assert_eq!(
        asked["post_logout_redirect_uri"],
        format!("{}/auth/signed-out", stage.console)
    );
    assert_eq!(asked["id_token_hint"].split('.').count(), 3, "{end}");
    screenshot(&browser, "07-provider-sign-out").await;
    click_to(
        &browser,
        "button[name=logout][value=yes]",
        &format!("{}/auth/signed-out", stage.console),
    )
    .await;
    assert!(text(&browser).await.contains("You are signed out"));
    screenshot(&browser, "08-signed-out").await;
    // The next visit is asked to sign in at the provider, not let in silently.
    browser.goto(&format!("{}/", stage.console)).await.unwrap();
    let at = browser.current_url().await.unwrap();
    assert!(
        at.as_str().starts_with(&provider) && at.path().starts_with("/interaction/"),
        "after signing out, the provider asks again: {at}"
    );
    let form = browser.source().await.unwrap();
    assert!(form.contains("name=\"login\""), "{form}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let old = http
        .get(format!("{}/", stage.console))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status().as_u16(), 303, "the old session is over");
    assert!(old.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/auth/login"));
    assert_eq!(
        stage
            .forged_post("/auth/logout", &cookie, Some(&csrf))
            .await,
        403,
        "a signed-out session cannot post"
    );
    let metrics = stage.daemon.get("/metrics", Some(TOKEN)).await.1;
    for line in [
        "rosterd_console_sign_ins_total{outcome=\"ok\"} 1",
        "rosterd_console_refused_total{why=\"csrf\"} 2",
        "rosterd_console_refused_total{why=\"session\"} 1",
        "rosterd_console_approvals_total 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }

    // SIGTERM while a push is in flight: the run is cut short, and says so. The dying
    // daemon's log and `rosterd runs` tell it at once; the API and the console of the
    // daemon started next tell it too.
    stage.world.emulator().set_faults(
        common::world::TARGET,
        Faults {
            latency_ms: 4_000,
            ..Faults::default()
        },
    );
    assert_eq!(stage.daemon.post("/api/v1/runs").await.0, 202);
    eventually(60, "the push to start", || async {
        let metrics = stage.daemon.get("/metrics", Some(TOKEN)).await.1;
        metrics.contains("rosterd_push_requests_remaining{target=\"app\"}")
    })
    .await;
    let status = stage.daemon.terminate();
    assert!(status.success(), "{status:?}\n{}", stage.daemon.log());
    let log = stage.daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("run finished") && l.contains("cut_short"))
        .unwrap_or_else(|| panic!("no run finished line for the cut run:\n{log}"));
    let cut: i64 = line
        .split(" run=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(cut > failed, "{line}");
    assert_eq!(cli_outcome(&stage, cut), "cut_short");
    stage
        .world
        .emulator()
        .set_faults(common::world::TARGET, Faults::default());
    let mut command = Command::new(env!("CARGO_BIN_EXE_rosterd"));
    command
        .args(["run", "--config"])
        .arg(stage.world.path("rosterd.yaml"))
        .env("ROSTERD_TEST_OIDC_SECRET", CLIENT_SECRET);
    let port: u16 = stage.console.rsplit(':').next().unwrap().parse().unwrap();
    stage.daemon = Daemon::spawn(&stage.world, "rosterd-again", port, command);
    stage.daemon.ready().await;
    stage
        .sign_in(&browser, "approver", "/runs", "09-sign-in-again")
        .await;
    let (api, console) = api_and_console_outcome(&stage, &browser, cut).await;
    assert_eq!((api.as_str(), console.as_str()), ("cut_short", "cut short"));
    browser.close().await.unwrap();
}

/// A viewer (by the provider's groups claim) sees the holds but no Approve button, and an
/// approval forged with their session and CSRF token is refused; they can plan a rule. A
/// person the provider signs in without either role sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_holds_but_cannot_approve() {
    for db in common::all_dbs().await {
        viewer_journey(db).await;
    }
}

async fn viewer_journey(db: common::TestDb) {
    let Some(stage) = Stage::new("viewer", db).await else {
        return;
    };
    let browser = stage.browser("viewer").await;
    stage
        .sign_in(&browser, "viewer", "/holds", "11-viewer-sign-in")
        .await;
    let page = text(&browser).await;
    let id = stage.held_sales().await["id"].as_i64().unwrap();
    assert!(
        page.contains("Waiting for approval") && page.contains("approvers only"),
        "{page}"
    );
    assert!(
        browser
            .find_all(Locator::Css("form[action$='/approve']"))
            .await
            .unwrap()
            .is_empty(),
        "a viewer sees no Approve button"
    );
    screenshot(&browser, "12-holds-for-a-viewer").await;
    let (cookie, csrf) = stage.session(&browser).await;
    assert_eq!(
        stage
            .forged_post(&format!("/holds/{id}/approve"), &cookie, Some(&csrf))
            .await,
        403,
        "a viewer's approval, even with their CSRF token"
    );
    assert_eq!(stage.held_sales().await["status"], "held");
    // Nor can a viewer ask for a sync: no button, and a forged POST is refused.
    browser.goto(&format!("{}/", stage.console)).await.unwrap();
    assert!(browser
        .find_all(Locator::Css("form[action='/sync']"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        stage.forged_post("/sync", &cookie, Some(&csrf)).await,
        403,
        "a viewer's sync request"
    );
    let metrics = stage.daemon.get("/metrics", Some(TOKEN)).await.1;
    assert!(
        metrics
            .lines()
            .any(|l| l == "rosterd_console_refused_total{why=\"role\"} 2"),
        "{metrics}"
    );
    // Planning a pasted rule: its members on the snapshot in force, or its diagnostics.
    let sales = stage
        .world
        .store()
        .await
        .group_memberships("sales")
        .await
        .unwrap()
        .len();
    let plan = |rule: &str| {
        format!(
            "{}/plan?rule={}",
            stage.console,
            url::form_urlencoded::byte_serialize(rule.as_bytes()).collect::<String>()
        )
    };
    browser
        .goto(&plan("division == \"Sales\" and member_of(\"everyone\")"))
        .await
        .unwrap();
    let planned = text(&browser).await;
    assert!(
        planned.contains(&format!("{sales} of 60 workers")),
        "{planned}"
    );
    screenshot(&browser, "13-plan-a-rule").await;
    browser.goto(&plan("divison == \"Sales\"")).await.unwrap();
    let refused = text(&browser).await;
    assert!(
        refused.contains("The rule does not check") && refused.contains("divison"),
        "{refused}"
    );

    // Pages are not cached, framed or scripted.
    let overview = reqwest::Client::new()
        .get(format!("{}/", stage.console))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status().as_u16(), 200);
    let headers = overview.headers();
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    // The console's session opens no API route: the API wants its bearer token.
    let api = reqwest::Client::new()
        .get(format!("{}/api/v1/holds", stage.console))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    browser.close().await.unwrap();

    // Someone the provider signs in who holds neither role sees nothing, even with an
    // approver's address that the provider has not verified.
    let stranger = stage.browser("stranger").await;
    stage
        .sign_in(&stranger, "stranger", "/", "14-stranger-sign-in")
        .await;
    let page = text(&stranger).await;
    assert!(page.contains("neither a viewer nor an approver"), "{page}");
    assert!(
        !page.contains("Rules in force") && !page.contains("sales"),
        "{page}"
    );
    screenshot(&stranger, "15-no-access").await;
    stranger.close().await.unwrap();

    // Someone whose groups the provider left out of the token is told so, and the log says
    // what to change at the provider.
    let crowded = stage.browser("crowded").await;
    stage
        .sign_in(&crowded, "crowded", "/", "16-groups-left-out-sign-in")
        .await;
    let page = text(&crowded).await;
    assert!(
        page.contains("neither a viewer nor an approver")
            && page.contains("left your groups out of this sign-in"),
        "{page}"
    );
    screenshot(&crowded, "17-groups-left-out").await;
    crowded.close().await.unwrap();
    let log = stage.daemon.log();
    assert!(
        log.contains("left the groups claim out of the ID token"),
        "{log}"
    );

    // A group the rules drop stays readable from its audit: listed apart, with its history
    // (the run in which everyone left) and who was in it on a date.
    let (_, body) = stage
        .daemon
        .get("/api/v1/groups/managers/members", Some(TOKEN))
        .await;
    let managers = serde_json::from_str::<serde_json::Value>(&body).unwrap()["members"]
        .as_array()
        .unwrap()
        .len();
    assert!(managers > 0);
    let path = stage.world.path("rules/groups.yaml");
    let rules = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        rules.find("  - name: managers").unwrap(),
        rules.find("  - name: sales").unwrap(),
    );
    std::fs::write(&path, format!("{}{}", &rules[..start], &rules[end..])).unwrap();
    stage.daemon.hang_up();
    eventually(30, "the reload that drops managers", || async {
        stage
            .daemon
            .get("/api/v1/groups/managers", Some(TOKEN))
            .await
            .0
            == 404
    })
    .await;
    let runs_before = runs_recorded(&stage.daemon).await;
    assert_eq!(stage.daemon.post("/api/v1/runs").await.0, 202);
    eventually(60, "the sync after managers was dropped", || async {
        runs_recorded(&stage.daemon).await > runs_before
    })
    .await;
    let browser = stage.browser("viewer-again").await;
    stage
        .sign_in(&browser, "viewer", "/groups", "18-viewer-sign-in-again")
        .await;
    let list = text(&browser).await;
    assert!(
        list.contains("No longer in the rules (their audit stays): managers"),
        "{list}"
    );
    click_to(
        &browser,
        "p.removed a[href='/groups/managers']",
        &format!("{}/groups/managers", stage.console),
    )
    .await;
    let page = text(&browser).await;
    assert!(
        page.contains("The rules in force no longer define managers"),
        "{page}"
    );
    // The newest run first: nobody joined, every manager left, none are left.
    assert!(
        page.lines()
            .any(|l| l.ends_with(&format!(" 0 {managers} 0"))),
        "{page}"
    );
    screenshot(&browser, "19-a-dropped-group").await;
    browser
        .goto(&format!(
            "{}/groups/managers/on?date={}",
            stage.console,
            rosterd::clock::today_utc()
        ))
        .await
        .unwrap();
    assert!(text(&browser)
        .await
        .contains("Nobody: managers had no members"));
    browser.close().await.unwrap();
}

/// Without a `ui:` section the daemon's address serves the API only; with one, the daemon
/// refuses to start without the client secret or with a role naming a group the rules do
/// not have (which would quietly lock everyone out).
/// The edges of signing in, each with the provider issuing the token: an email without
/// `email_verified` names nobody (no role by it), the text "true" is read as true, a claim
/// that is neither is a page naming it, a token issued ten minutes ahead is refused; the
/// provider's error shows its code and never its text; a new sign-in ends the session the
/// browser had; two sign-ins started in two tabs both finish; a form posted from another site
/// is refused; and one address cannot start sign-ins without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edges_of_sign_in() {
    let Some(stage) = Stage::new("edges", common::sqlite_db()).await else {
        return;
    };
    let console = stage.console.clone();
    let callback = format!("{console}/auth/callback");
    let arrived_at_callback = |at: &url::Url| at.as_str().starts_with(&callback);
    for (login, expected) in [
        ("unsaid", "neither a viewer nor an approver"),
        (
            "garbled",
            "`email_verified` claim that is `yes`, not true or false",
        ),
        ("early", "`iat` claim that says it was issued"),
    ] {
        let browser = stage.browser(login).await;
        browser.goto(&format!("{console}/")).await.unwrap();
        let lands = |at: &url::Url| {
            at.as_str().starts_with(&console) && !at.path().starts_with("/auth/login")
        };
        at_provider_sign_in(&browser, login, |at| lands(at) || arrived_at_callback(at)).await;
        let page = text(&browser).await;
        assert!(page.contains(expected), "{login}: {page}");
        browser.close().await.unwrap();
    }
    // The text "true" verifies the approver's address: an approver.
    let browser = stage.browser("texted").await;
    stage.sign_in(&browser, "texted", "/", "20-texted").await;
    let page = text(&browser).await;
    assert!(
        page.contains("Rules in force") && page.contains("Sync now"),
        "{page}"
    );

    // The provider's error: its code, never its text.
    browser
        .goto(&format!(
            "{console}/auth/callback?error=access_denied%3Cb%3E&error_description=Call+%2B1-555-0100+to+restore+access"
        ))
        .await
        .unwrap();
    let page = text(&browser).await;
    assert!(
        page.contains("`access_denied") && !page.contains("555"),
        "{page}"
    );

    // A new sign-in ends the session the browser had.
    browser.goto(&format!("{console}/")).await.unwrap();
    let (old_cookie, old_csrf) = stage.session(&browser).await;
    browser
        .goto(&format!("{console}/auth/login?return_to=/runs"))
        .await
        .unwrap();
    let back = url::Url::parse(&format!("{console}/runs")).unwrap();
    at_provider_sign_in(&browser, "texted", |at| *at == back).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let old = http
        .get(format!("{console}/"))
        .header("cookie", &old_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status().as_u16(),
        303,
        "the old session still opens pages"
    );

    // A form posted from another site is refused, token or not.
    browser.goto(&format!("{console}/")).await.unwrap();
    let (cookie, csrf) = stage.session(&browser).await;
    assert_ne!(csrf, old_csrf);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let status = http
            .post(format!("{console}/sync"))
            .header("cookie", &cookie)
            .header(header, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 403, "{header}: {value}");
    }
    browser.close().await.unwrap();

    // Two sign-ins started in two tabs both finish.
    let browser = stage.browser("tabs").await;
    browser
        .goto(&format!("{console}/auth/login?return_to=/runs"))
        .await
        .unwrap();
    let first = browser.window().await.unwrap();
    let second = browser.new_window(true).await.unwrap().handle;
    browser.switch_to_window(second.clone()).await.unwrap();
    browser
        .goto(&format!("{console}/auth/login?return_to=/holds"))
        .await
        .unwrap();
    browser.switch_to_window(first).await.unwrap();
    let runs = url::Url::parse(&format!("{console}/runs")).unwrap();
    at_provider_sign_in(&browser, "texted", |at| *at == runs).await;
    browser.switch_to_window(second).await.unwrap();
    let holds = url::Url::parse(&format!("{console}/holds")).unwrap();
    at_provider_sign_in(&browser, "texted", |at| *at == holds).await;
    assert!(text(&browser).await.contains("Holds"));
    browser.close().await.unwrap();

    // One address starting sign-ins without end is stopped after 30 a minute.
    let flood = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..32 {
        let r = flood
            .get(format!("{console}/auth/login"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..30].iter().all(|&s| s == 303), "{statuses:?}");
    assert_eq!(statuses[30..], [429, 429], "{statuses:?}");
    let metrics = stage.daemon.get("/metrics", Some(TOKEN)).await.1;
    for line in [
        "rosterd_console_refused_total{why=\"origin\"} 2",
        "rosterd_console_refused_total{why=\"sign_in_rate\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_off_without_ui_and_refuses_a_config_it_cannot_honour() {
    let world = World::with_emulator(common::sqlite_db(), 20, &[]).await;
    let port = free_port();
    let daemon_section = format!(
        "daemon:\n  sync: \"0 0 4 * * *\"\n  listen: 127.0.0.1:{port}\n  shutdown_timeout_seconds: 20\n"
    );
    world.write_config(&daemon_section, TARGET_OPTIONS);
    let mut daemon = Daemon::start(&world, port);
    daemon.ready().await;
    let (status, body) = daemon.get("/", None).await;
    assert_eq!(status, 404, "no console without ui: {body}");
    let (status, _) = daemon.get("/auth/login", None).await;
    assert_eq!(status, 404);
    assert!(daemon.terminate().success());

    let ui = |approvers: &str| {
        format!(
            "{daemon_section}ui:\n  issuer: http://127.0.0.1:1\n  client_id: rosterd-console\n  client_secret_env: ROSTERD_TEST_OIDC_SECRET\n  redirect_url: http://127.0.0.1:{port}/auth/callback\n  approvers:\n    - group: {approvers}\n"
        )
    };
    let start = |secret: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        command
            .args(["run", "--config"])
            .arg(world.path("rosterd.yaml"))
            .env("ROSTERD_API_TOKEN", TOKEN)
            .env_remove("ROSTERD_TEST_OIDC_SECRET");
        if let Some(s) = secret {
            command.env("ROSTERD_TEST_OIDC_SECRET", s);
        }
        let out = command.output().unwrap();
        assert!(!out.status.success(), "the daemon must not start");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    world.write_config(&ui("sales"), TARGET_OPTIONS);
    let e = start(None);
    assert!(
        e.contains(
            "ui.client_secret_env: the environment variable `ROSTERD_TEST_OIDC_SECRET` is not set"
        ),
        "{e}"
    );
    world.write_config(&ui("corpsec-approverz"), TARGET_OPTIONS);
    let e = start(Some(CLIENT_SECRET));
    assert!(
        e.contains("ui.approvers: `group: corpsec-approverz` is not a group of the rules"),
        "{e}"
    );
    assert!(
        !e.contains(CLIENT_SECRET),
        "the secret is never printed: {e}"
    );
    // `rosterd check`, as the rules repository's CI runs it, says the same.
    let check = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["check", "--config"])
        .arg(world.path("rosterd.yaml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{out}");
    assert!(
        out.contains("error:")
            && out.contains("ui.approvers: `group: corpsec-approverz` is not a group of the rules"),
        "{out}"
    );
}

/// On PostgreSQL with two daemons, the standby serves the console too (sessions are in the
/// database): an approver approves there, the page says the leader sends it, the hold records
/// who approved, and the leader's next sync releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_on_a_standby_is_sent_by_the_leader() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let Some(stage) = Stage::with("standby", db, true).await else {
        return;
    };
    let (standby, console) = stage.standby.as_ref().unwrap();
    let browser = stage.browser("standby").await;
    stage
        .sign_in_at(
            console,
            &browser,
            "approver",
            "/holds",
            "21-standby-sign-in",
        )
        .await;
    let id = stage.held_sales().await["id"].as_i64().unwrap();
    browser
        .goto(&format!("{console}/holds/{id}"))
        .await
        .unwrap();
    click(&browser, "input[name='confirm']").await;
    click_to(
        &browser,
        &format!("form[action='/holds/{id}/approve'] button"),
        &format!("{console}/holds?approved={id}&standby=1"),
    )
    .await;
    let page = text(&browser).await;
    assert!(
        page.contains("the leader's next scheduled sync sends it"),
        "{page}"
    );
    screenshot(&browser, "22-approved-on-a-standby").await;
    let hold = stage.held_sales().await;
    assert_eq!(hold["status"], "approved", "{hold}");
    assert_eq!(
        hold["approved_by"],
        format!("oidc:approver ({})", stage.approver_email)
    );
    // The standby queues nothing; the leader's next sync (asked for here) sends it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stage.held_sales().await["status"], "approved");
    let (status, _) = stage.daemon.post("/api/v1/runs").await;
    assert_eq!(status, 202);
    eventually(
        60,
        "the leader's sync to send the approved push",
        || async { stage.held_sales().await["status"] == "released" },
    )
    .await;
    assert!(standby
        .get("/readyz", None)
        .await
        .1
        .contains("\"leader\": false"));

    // A standby runs no sync; "Sync now" there says so.
    browser.goto(&format!("{console}/")).await.unwrap();
    click_to(
        &browser,
        "form[action='/sync'] button",
        &format!("{console}/?sync=standby"),
    )
    .await;
    assert!(text(&browser).await.contains("This instance is on standby"));

    // This console's config says `sign_out_at_provider: false`: signing out ends its own
    // session only, so the provider, still signed in, lets the next visit in at once.
    click_to(
        &browser,
        "form[action='/auth/logout'] button",
        &format!("{console}/auth/signed-out"),
    )
    .await;
    browser.goto(&format!("{console}/holds")).await.unwrap();
    let back = url::Url::parse(&format!("{console}/holds")).unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_url(back)
        .await
        .unwrap_or_else(|e| panic!("the provider did not let the approver in again: {e}"));
    assert!(
        browser
            .find(Locator::Css("form[action='/auth/logout']"))
            .await
            .is_ok(),
        "signed in again"
    );
    browser.close().await.unwrap();
}

/// Asks for `group` for `days` with `why` (and for `worker` when given, as approvers may) on
/// the console's form; the new request's id.
async fn ask(
    stage: &Stage,
    browser: &Client,
    group: &str,
    worker: Option<&str>,
    days: &str,
    why: &str,
) -> i64 {
    browser
        .goto(&format!("{}/requests/new", stage.console))
        .await
        .unwrap();
    browser
        .find(Locator::Css("select[name=group]"))
        .await
        .unwrap()
        .select_by_value(group)
        .await
        .unwrap();
    if let Some(w) = worker {
        let field = browser
            .find(Locator::Css("input[name=worker]"))
            .await
            .unwrap();
        field.send_keys(w).await.unwrap();
    }
    let field = browser
        .find(Locator::Css("input[name=days]"))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(days).await.unwrap();
    browser
        .find(Locator::Css("input[name=justification]"))
        .await
        .unwrap()
        .send_keys(why)
        .await
        .unwrap();
    click(browser, "form[action='/requests'] button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let at = browser.current_url().await.unwrap();
        if let Some(id) = at
            .path()
            .strip_prefix("/requests/")
            .and_then(|i| i.parse().ok())
        {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "asking for {group} did not lead to the request's page; at {at}:\n{}",
            text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's text once it can be read: a page still loading may have its body replaced
/// between finding it and reading it.
async fn shown(browser: &Client) -> String {
    for _ in 0..50 {
        if let Ok(body) = browser.find(Locator::Css("body")).await {
            if let Ok(t) = body.text().await {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text(browser).await
}

/// The remote's branches, by name.
fn branches(stage: &Stage) -> std::collections::BTreeSet<String> {
    let url = &stage.requests.as_ref().unwrap().url;
    common::git(&stage.world.path("."), &["ls-remote", "--heads", url])
        .lines()
        .filter_map(|l| l.split_once("refs/heads/").map(|(_, b)| b.to_string()))
        .collect()
}

/// `rosterd check` on the remote's `branch`, in a fresh clone beside the world's config.
fn check_branch(stage: &Stage, branch: &str) {
    let url = &stage.requests.as_ref().unwrap().url;
    let dir = stage
        .world
        .path(&format!("check-{}", branch.replace('/', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    common::git(
        &dir,
        &["clone", "--quiet", "--branch", branch, url, "rules"],
    );
    std::fs::copy(stage.world.path("rosterd.yaml"), dir.join("rosterd.yaml")).unwrap();
    std::fs::copy(stage.world.path("workers.csv"), dir.join("workers.csv")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["check", "--config"])
        .arg(dir.join("rosterd.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rosterd check on {branch}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Access requests in the browser, against a rules repository that `git daemon` serves: a
/// worker who is no viewer asks for two groups; an approver cannot approve a request of
/// their own, denies one (nothing is written), approves the other (a branch is pushed); the
/// test merges it, the daemon reloads and syncs, the member reaches the SCIM target, and
/// the request's page says so. Then the approver's review keeps one entry and removes
/// another, each a branch that `rosterd check` accepts; the webhooks hear of each request
/// and decision once, signed, after a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_asked_approved_merged_and_reaches_the_target() {
    let Some(stage) = Stage::build("requests", common::sqlite_db(), false, true).await else {
        return;
    };
    let rae = stage.requester.clone();
    let before = branches(&stage);
    assert_eq!(before.iter().collect::<Vec<_>>(), ["main"]);

    // Rae is neither viewer nor approver, yet may ask; she sees no one else's memberships.
    let asker = stage.browser("requester").await;
    stage
        .sign_in(
            &asker,
            "requester",
            "/requests/new",
            "r01-requester-signs-in",
        )
        .await;
    let granted = ask(
        &stage,
        &asker,
        "platform-access",
        None,
        "20",
        "Migrates billing onto the platform",
    )
    .await;
    let page = shown(&asker).await;
    assert!(
        page.contains("pending") && page.contains("Migrates billing"),
        "{page}"
    );
    assert!(
        asker
            .find(Locator::Css("form[action$='/approve']"))
            .await
            .is_err(),
        "no approve form on one's own request:\n{page}"
    );
    screenshot(&asker, "r02-request-pending").await;
    let denied = ask(
        &stage,
        &asker,
        "corpsec-approvers",
        None,
        "10",
        "Would like to approve",
    )
    .await;
    let (cookie, csrf) = stage.session(&asker).await;
    assert_eq!(
        stage
            .forged_post(
                &format!("/requests/{granted}/approve"),
                &cookie,
                Some(&csrf)
            )
            .await,
        403,
        "a requester who is no approver cannot approve"
    );
    asker
        .goto(&format!("{}/groups", stage.console))
        .await
        .unwrap();
    assert!(shown(&asker)
        .await
        .contains("neither a viewer nor an approver"));

    // Ada approves the group's requests; one she asks for (for another worker) is her own.
    let ada = stage.browser("approver-requests").await;
    stage
        .sign_in(&ada, "approver", "/requests", "r03-approver-signs-in")
        .await;
    let listed = shown(&ada).await;
    assert!(
        listed.contains("Waiting for your decision") && listed.contains(&rae.id),
        "{listed}"
    );
    let own = ask(
        &stage,
        &ada,
        "corpsec-approvers",
        Some(&stage.hybrid_member),
        "5",
        "Covers my leave",
    )
    .await;
    let (cookie, csrf) = stage.session(&ada).await;
    assert_eq!(
        stage
            .forged_post(&format!("/requests/{own}/approve"), &cookie, Some(&csrf))
            .await,
        403,
        "an approver cannot approve a request of their own"
    );
    assert!(shown(&ada)
        .await
        .contains("you cannot approve a request of your own"));
    click(
        &ada,
        &format!("form[action='/requests/{own}/withdraw'] button"),
    )
    .await;
    eventually(20, "the withdrawn request says so", || async {
        shown(&ada).await.contains("withdrawn")
    })
    .await;

    // A denial writes nothing to the rules repository.
    ada.goto(&format!("{}/requests/{denied}", stage.console))
        .await
        .unwrap();
    ada.find(Locator::Css(&format!(
        "form[action='/requests/{denied}/deny'] input[name=comment]"
    )))
    .await
    .unwrap()
    .send_keys("Approvers are CorpSec staff")
    .await
    .unwrap();
    click(
        &ada,
        &format!("form[action='/requests/{denied}/deny'] button"),
    )
    .await;
    eventually(20, "the denial", || async {
        shown(&ada).await.contains("denied")
    })
    .await;
    assert_eq!(branches(&stage), before, "a denial pushes nothing");

    // The approval lands as a branch.
    ada.goto(&format!("{}/requests/{granted}", stage.console))
        .await
        .unwrap();
    click(
        &ada,
        &format!("form[action='/requests/{granted}/approve'] button"),
    )
    .await;
    eventually(60, "the approval", || async {
        shown(&ada).await.contains("approved")
    })
    .await;
    screenshot(&ada, "r04-request-approved").await;
    let pushed: Vec<String> = branches(&stage).difference(&before).cloned().collect();
    assert_eq!(pushed.len(), 1, "one branch for the approval: {pushed:?}");
    check_branch(&stage, &pushed[0]);

    // The test merges it; the daemon's rules folder pulls; the daemon reloads and syncs.
    let url = stage.requests.as_ref().unwrap().url.clone();
    let merge = stage.world.path("merge");
    common::git(&stage.world.path("."), &["clone", "--quiet", &url, "merge"]);
    common::git(
        &merge,
        &[
            "merge",
            "--quiet",
            "--no-edit",
            &format!("origin/{}", pushed[0]),
        ],
    );
    common::git(&merge, &["push", "--quiet", "origin", "main"]);
    // Merged, not yet in the daemon's rules: the next run finds its ticket on main.
    let store = stage.world.store().await;
    let state = |id: i64| {
        let store = store.clone();
        async move { store.access_request(id).await.unwrap().unwrap().state }
    };
    assert_eq!(state(granted).await, RequestState::Approved);
    assert_eq!(stage.daemon.post("/api/v1/runs").await.0, 202);
    eventually(60, "the approved request found merged", || async {
        state(granted).await == RequestState::Merged
    })
    .await;
    // A request whose last day passed while nobody decided it expires at the next run.
    let stale = NewRequest {
        group: "platform-access".into(),
        list: "include".into(),
        worker: "E-NOBODY".into(),
        worker_email: None,
        worker_name: None,
        requested_by: "oidc:someone".into(),
        requester_subject: "someone".into(),
        requester_email: None,
        justification: "a day's work".into(),
        until: (rosterd::clock::today_utc() - chrono::Days::new(1)).to_string(),
    };
    let stale = store
        .create_request(&stale, "2026-01-01T00:00:00Z")
        .await
        .unwrap();
    common::git(
        &stage.world.path("rules"),
        &["pull", "--quiet", "--ff-only", "origin", "main"],
    );
    let email = rae.email.to_lowercase();
    eventually(90, "the requester reaching the SCIM target", || async {
        stage
            .world
            .actual()
            .await
            .get("platform-access")
            .is_some_and(|m| m.contains(&email))
    })
    .await;
    eventually(60, "the request's page following the change", || async {
        ada.goto(&format!("{}/requests/{granted}", stage.console))
            .await
            .unwrap();
        let page = shown(&ada).await;
        page.contains("in force") && page.contains("In app") && !page.contains("not yet")
    })
    .await;
    screenshot(&ada, "r05-request-in-force").await;
    assert_eq!(state(granted).await, RequestState::InForce);
    assert_eq!(state(stale).await, RequestState::Expired);
    // The API reads the same request: its state and its history.
    let (status, body) = stage
        .daemon
        .get(&format!("/api/v1/requests/{granted}"), Some(TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["request"]["state"], "in_force", "{api}");
    assert_eq!(api["history"].as_array().unwrap().len(), 4, "{api}");
    let (_, body) = stage
        .daemon
        .get("/api/v1/requests?state=denied", Some(TOKEN))
        .await;
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["requests"][0]["id"], denied, "{api}");
    assert_eq!(api["requests"].as_array().unwrap().len(), 1, "{api}");
    let history: Vec<RequestState> = store
        .request_events(granted)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        history,
        [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Merged,
            RequestState::InForce
        ]
    );

    // Reviews: keep the older entry, remove the new one; each is a branch check accepts.
    ada.goto(&format!("{}/reviews", stage.console))
        .await
        .unwrap();
    let due = shown(&ada).await;
    assert!(
        due.contains(&stage.hybrid_member) && due.contains(&rae.id),
        "{due}"
    );
    screenshot(&ada, "r06-reviews-due").await;
    for (who, decision) in [
        (stage.hybrid_member.clone(), "keep"),
        (rae.id.clone(), "remove"),
    ] {
        ada.goto(&format!("{}/reviews", stage.console))
            .await
            .unwrap();
        let row = format!("//tr[td[contains(., '{who}')]]");
        ada.find(Locator::XPath(&format!("{row}//input[@name='comment']")))
            .await
            .unwrap()
            .send_keys("Reviewed in the quarterly round")
            .await
            .unwrap();
        ada.find(Locator::XPath(&format!(
            "{row}//button[@value='{decision}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        eventually(60, "the review's decision", || async {
            shown(&ada)
                .await
                .contains(&format!("{decision} {who} in platform-access: commit"))
        })
        .await;
    }
    let reviewed: Vec<String> = branches(&stage)
        .into_iter()
        .filter(|b| b != "main" && b != &pushed[0])
        .collect();
    assert_eq!(reviewed.len(), 2, "{reviewed:?}");
    for b in &reviewed {
        check_branch(&stage, b);
    }
    // The removal merged and pulled, the request that granted the entry has ended.
    let removal = reviewed.iter().find(|b| b.contains("/remove-")).unwrap();
    common::git(&merge, &["fetch", "--quiet", "origin"]);
    common::git(
        &merge,
        &[
            "merge",
            "--quiet",
            "--no-edit",
            &format!("origin/{removal}"),
        ],
    );
    common::git(&merge, &["push", "--quiet", "origin", "main"]);
    common::git(
        &stage.world.path("rules"),
        &["pull", "--quiet", "--ff-only", "origin", "main"],
    );
    eventually(90, "the request ended by the review's removal", || async {
        state(granted).await == RequestState::Ended
    })
    .await;

    // The webhooks: three requests and four decisions, each once, signed, after a 500.
    let got = stage
        .requests
        .as_ref()
        .unwrap()
        .hooks
        .lock()
        .unwrap()
        .clone();
    let taken: Vec<_> = got.iter().filter(|r| r.4 == 200).collect();
    let count = |event: &str| taken.iter().filter(|r| r.0 == event).count();
    assert_eq!((count("request"), count("decision")), (3, 4), "{got:#?}");
    for r in &taken {
        assert_eq!(
            got.iter().filter(|o| o.1 == r.1).count(),
            2,
            "one 500, then taken: {r:?}"
        );
        let (t, _) = r.2.trim_start_matches("t=").split_once(",v1=").unwrap();
        assert_eq!(
            r.2,
            rosterd::notify::signature(HOOK_KEY, t.parse().unwrap(), &r.3),
            "the signature verifies"
        );
        assert!(!r.3.contains(HOOK_KEY) && !r.3.contains(CLIENT_SECRET));
    }
}
