//! The HR export over HTTP: auth from the environment, retries on 429/5xx honouring
//! `Retry-After`, no retry on other 4xx, timeouts, and the last good snapshot kept when the
//! source is down. The server is real HTTP on 127.0.0.1; secrets never reach messages.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rosterd::config::Config;
use rosterd::cycle::Outcome;
use rosterd::fetch::{self, FetchError};

#[derive(Clone)]
enum Reply {
    Status(u16, &'static str, String),
    /// Accept the connection and never answer.
    Hang,
}

/// A scripted HTTP server: the n-th request gets the n-th reply (the last one repeats).
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_string());
                match replies[i.min(replies.len() - 1)].clone() {
                    Reply::Hang => {
                        std::thread::sleep(Duration::from_secs(5));
                    }
                    Reply::Status(status, headers, body) => {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                    }
                }
            }
        });
        Server { port, requests }
    }

    /// Answers every request with `body` as bytes, each `from` byte replaced by `to` (so a
    /// test can send what is not UTF-8).
    fn start_bytes(body: Vec<u8>, from: u8, to: u8) -> Server {
        let body: Vec<u8> = body
            .into_iter()
            .map(|b| if b == from { to } else { b })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let mut reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                reply.extend_from_slice(&body);
                let _ = stream.write_all(&reply);
            }
        });
        Server {
            port,
            requests: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn export() -> String {
    std::fs::read_to_string("tests/fixtures/org/workers.csv").unwrap()
}

fn ok(body: String) -> Reply {
    Reply::Status(200, "Content-Type: text/csv\r\n", body)
}

/// The fixture organisation's config with its export at `url`.
fn config(dir: &std::path::Path, url: &str, auth: &str, extra: &str) -> Config {
    let text = std::fs::read_to_string(common::ORG_CONFIG)
        .unwrap()
        .replace(
            "source: { file: workers.csv }",
            &format!("source:\n    url: \"{url}\"\n    retry_backoff_ms: 10\n    timeout_seconds: 2\n{auth}{extra}"),
        )
        .replace("dir: rules", &format!("dir: {}", std::path::Path::new("tests/fixtures/org/rules").canonicalize().unwrap().display()));
    let path = dir.join("rosterd.yaml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

#[tokio::test]
async fn a_bearer_token_from_the_environment_is_sent_and_the_export_loads() {
    std::env::set_var("ROSTERD_TEST_TOKEN_A", "tok-a-s3cret");
    let server = Server::start(vec![ok(export())]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/report?format=csv"),
        "    auth: { bearer: { token_env: ROSTERD_TEST_TOKEN_A } }\n",
        "",
    );
    let (snapshot, report) = fetch::load(&c.directory).await.unwrap();
    assert_eq!(snapshot.len(), 10);
    assert_eq!(
        report.source,
        format!("http://127.0.0.1:{}/report?...", server.port)
    );
    let requests = server.requests();
    assert!(
        requests[0].starts_with("GET /report?format=csv HTTP/1.1"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer tok-a-s3cret"),
        "{}",
        requests[0]
    );
    assert!(
        !format!("{c:?}").contains("tok-a-s3cret"),
        "the config holds no secret"
    );
}

#[tokio::test]
async fn basic_auth_sends_the_user_and_the_password_from_the_environment() {
    std::env::set_var("ROSTERD_TEST_PASSWORD_B", "pw-b");
    let server = Server::start(vec![ok(export())]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/r"),
        "    auth: { basic: { username: isu_rosterd, password_env: ROSTERD_TEST_PASSWORD_B } }\n",
        "",
    );
    fetch::export(&c.directory.source).await.unwrap();
    // base64("isu_rosterd:pw-b")
    assert!(
        server.requests()[0]
            .to_ascii_lowercase()
            .contains("authorization: basic axn1x3jvc3rlcmq6chctyg=="),
        "{}",
        server.requests()[0]
    );
}

#[tokio::test]
async fn busy_and_failing_answers_are_retried_until_one_succeeds() {
    let server = Server::start(vec![
        Reply::Status(503, "Retry-After: 0\r\n", String::new()),
        Reply::Status(429, "Retry-After: 0\r\n", String::new()),
        Reply::Status(500, "", "boom".into()),
        ok(export()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &server.url("/r"), "", "");
    let text = fetch::export(&c.directory.source).await.unwrap();
    assert_eq!(text, export());
    assert_eq!(server.requests().len(), 4, "three retries, the default");
}

#[tokio::test]
async fn refused_credentials_are_not_retried_and_the_token_is_not_shown() {
    std::env::set_var("ROSTERD_TEST_TOKEN_C", "tok-c-s3cret");
    let server = Server::start(vec![Reply::Status(
        401,
        "",
        "bad token tok-c-s3cret".into(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/r?key=query-s3cret"),
        "    auth: { bearer: { token_env: ROSTERD_TEST_TOKEN_C } }\n",
        "",
    );
    let e = fetch::export(&c.directory.source).await.unwrap_err();
    let text = e.to_string();
    assert_eq!(text, format!("HR export http://127.0.0.1:{}/r?...: HTTP 401: the credentials were refused after 1 attempt", server.port));
    assert!(
        !text.contains("s3cret") && !format!("{e:?}").contains("s3cret"),
        "{e:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_missing_secret_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "http://127.0.0.1:9/r",
        "    auth: { bearer: { token_env: ROSTERD_TEST_UNSET_TOKEN } }\n",
        "",
    );
    let e = fetch::export(&c.directory.source).await.unwrap_err();
    assert!(matches!(e, FetchError::MissingSecret { .. }));
    assert!(e.to_string().starts_with("environment variable `ROSTERD_TEST_UNSET_TOKEN` (directory.source.auth.bearer.token_env) is not set"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start(vec![Reply::Hang]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &server.url("/r"), "", "    retries: 1\n");
    let started = std::time::Instant::now();
    let e = fetch::export(&c.directory.source)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("timed out") && e.ends_with("after 2 attempts"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The fixture export as a Workday RaaS report: empty fields left out, tags as a list.
fn workday_report() -> String {
    let text = export();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let entries: Vec<serde_json::Value> = lines
        .map(|line| {
            let mut entry = serde_json::Map::new();
            for (column, value) in header.iter().zip(line.split(',')) {
                if value.is_empty() {
                    continue;
                }
                let json = if *column == "tags" {
                    serde_json::json!(value.split(';').collect::<Vec<_>>())
                } else {
                    serde_json::json!(value)
                };
                entry.insert(column.to_string(), json);
            }
            serde_json::Value::Object(entry)
        })
        .collect();
    serde_json::json!({ "Report_Entry": entries }).to_string()
}

#[tokio::test]
async fn workday_json_over_the_url() {
    let server = Server::start(vec![Reply::Status(
        200,
        "Content-Type: application/json\r\n",
        workday_report(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/ccx/service/customreport2/acme/Workers?format=json"),
        "",
        "",
    );
    assert_eq!(
        c.directory.source.format(),
        rosterd::config::SourceFormat::WorkdayJson
    );
    let (snapshot, report) = fetch::load(&c.directory).await.unwrap();
    assert!(report.issues.is_empty(), "{report}");
    assert_eq!(snapshot.len(), 10);
    let w004 = snapshot.by_key("W004").unwrap();
    let tags = snapshot
        .get(snapshot.schema().lookup("tags").unwrap(), w004)
        .unwrap();
    assert_eq!(tags.to_string(), r#"["oncall", "cat-owner"]"#);
}

#[tokio::test]
async fn a_source_that_is_down_keeps_the_last_good_snapshot_and_is_recorded() {
    std::env::set_var("ROSTERD_TEST_TOKEN_D", "tok-d-s3cret");
    let server = Server::start(vec![ok(export()), Reply::Status(503, "", String::new())]);
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_db();
    let auth = "    auth: { bearer: { token_env: ROSTERD_TEST_TOKEN_D } }\n";
    let c = config(
        dir.path(),
        &server.url("/r?token=query-s3cret"),
        auth,
        "    retries: 1\n",
    );
    let c = Config {
        database: rosterd::config::DatabaseUrl::new(db.url.clone()),
        ..c
    };
    let schema = rosterd::directory::Schema::from_config(&c.directory);
    let rules = rosterd::rules::load(
        &c.rules.dir,
        &rosterd::rules::Context::from_config(&c, &schema),
    )
    .unwrap();
    let store = rosterd::store::Store::open(&db.url).await.unwrap();
    let inputs = |date| rosterd::cycle::Inputs {
        config: std::sync::Arc::new(c.clone()),
        rules: std::sync::Arc::new(rules.clone()),
        as_of: chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        now: rosterd::clock::now_utc(),
        kind: "evaluate",
    };
    rosterd::cycle::run(&inputs("2026-11-22"), &store)
        .await
        .unwrap();
    let outcome = rosterd::cycle::run(&inputs("2027-02-01"), &store)
        .await
        .unwrap();
    let Outcome::Applied {
        warning: Some(warning),
        removed,
        ..
    } = outcome
    else {
        panic!("expected a run on the last good snapshot");
    };
    assert!(
        warning.contains("HTTP 503") && warning.contains("evaluated the last good snapshot 1"),
        "{warning}"
    );
    assert_eq!(
        removed, 1,
        "the EA's entry expired; the snapshot still counts"
    );
    let run = store.runs(1).await.unwrap().remove(0);
    let recorded = run.message.unwrap();
    assert!(recorded.contains("HTTP 503"), "{recorded}");
    assert!(!recorded.contains("s3cret"), "{recorded}");
}

#[tokio::test]
async fn a_retry_after_of_days_waits_only_the_configured_most() {
    let server = Server::start(vec![
        Reply::Status(429, "Retry-After: 999999\r\n", String::new()),
        ok(export()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/r"),
        "",
        "    max_retry_after_seconds: 1\n",
    );
    // Uncapped, this waited 11.6 days; the bound here only keeps a regression from hanging.
    let loaded = tokio::time::timeout(Duration::from_secs(60), fetch::load(&c.directory))
        .await
        .expect("the Retry-After was not capped");
    assert_eq!(loaded.unwrap().0.len(), 10);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_fetch_gives_up_at_its_deadline_whatever_the_retries() {
    let server = Server::start(vec![Reply::Status(
        503,
        "Retry-After: 1\r\n",
        String::new(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/r"),
        "",
        "    retries: 20\n    deadline_seconds: 2\n",
    );
    let err = tokio::time::timeout(Duration::from_secs(60), fetch::load(&c.directory))
        .await
        .expect("the deadline did not hold")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no answer within directory.source.deadline_seconds (2 s)"),
        "{err}"
    );
    assert!(server.requests().len() <= 4, "{}", server.requests().len());
}

#[tokio::test]
async fn an_answer_over_max_bytes_is_refused_without_reading_it_whole() {
    let server = Server::start(vec![ok(export())]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &server.url("/r"), "", "    max_bytes: 100\n");
    let err = fetch::export(&c.directory.source).await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { max: 100, .. }),
        "{err}"
    );
    assert!(err.is_bad_answer());
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_one_within_it_followed() {
    let elsewhere = Server::start(vec![ok(export())]);
    let to_elsewhere = format!("Location: {}\r\n", elsewhere.url("/stolen"));
    let leaving: &'static str = Box::leak(to_elsewhere.into_boxed_str());
    let server = Server::start(vec![Reply::Status(307, leaving, String::new())]);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &server.url("/r"),
        "    auth: { bearer: { token_env: ROSTERD_TEST_TOKEN_R } }\n",
        "    retries: 0\n",
    );
    std::env::set_var("ROSTERD_TEST_TOKEN_R", "tok-r-s3cret");
    let err = fetch::load(&c.directory).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("refused a redirect to another origin"),
        "{err}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the other origin was asked"
    );

    let server = Server::start(vec![
        Reply::Status(307, "Location: /moved\r\n", String::new()),
        ok(export()),
    ]);
    let c = config(dir.path(), &server.url("/r"), "", "");
    assert_eq!(fetch::load(&c.directory).await.unwrap().0.len(), 10);
    assert!(server.requests()[1].starts_with("GET /moved "));
}

#[tokio::test]
async fn an_answer_that_is_not_utf8_is_a_bad_answer_with_its_place() {
    let mut body = export();
    body.insert(body.find("W003").unwrap() + 2, '\u{FFFD}');
    // Raw Latin-1: the server sends the bytes as they are, after replacing U+FFFD with 0xE9.
    let server = Server::start_bytes(body.replace('\u{FFFD}', "\u{1}").into_bytes(), 0x01, 0xE9);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &server.url("/r"), "", "");
    let err = fetch::export(&c.directory.source).await.unwrap_err();
    assert!(err.is_bad_answer(), "{err}");
    assert!(
        err.to_string()
            .contains("not UTF-8 text: the first bad byte is at line 4, column 3"),
        "{err}"
    );
}
