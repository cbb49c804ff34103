//! `rosterd run` as a real process, for the tests that start one (daemon, console).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::world::World;

pub const TOKEN: &str = "daemon-test-token-5b1e";

/// A running `rosterd run`; killed if the test fails before stopping it.
pub struct Daemon {
    pub child: Option<Child>,
    pub api: String,
    pub log: std::path::PathBuf,
}

impl Daemon {
    pub fn start(world: &World, port: u16) -> Daemon {
        Daemon::start_named(world, "rosterd", port)
    }

    /// Runs `NAME.yaml` from the world's folder, logging to `NAME.log`.
    pub fn start_named(world: &World, name: &str, port: u16) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        command
            .args(["run", "--config"])
            .arg(world.path(&format!("{name}.yaml")));
        Daemon::spawn(world, name, port, command)
    }

    /// Runs `command` (which starts `rosterd run`) with the token, logging to `NAME.log`.
    pub fn spawn(world: &World, name: &str, port: u16, mut command: Command) -> Daemon {
        let log = world.path(&format!("{name}.log"));
        let child = command
            .env("ROSTERD_API_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            api: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// SIGHUP: reload the config and the rules.
    pub fn hang_up(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    }

    /// SIGKILL: the process dies without a word, as on a lost node.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status. A daemon that does not stop is killed before the test
    /// fails, so that no process outlives the suite.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if started.elapsed() >= Duration::from_secs(40) {
                let log = self.log();
                self.kill();
                panic!("the daemon did not stop within 40 s of SIGTERM; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Daemon {
    /// Waits until `/readyz` answers 200: the database is migrated and the rules are loaded
    /// (a store opened before that would race the daemon's migrations).
    /// Whether `/readyz` says this process leads.
    pub async fn leading(&self) -> bool {
        let Ok(r) = reqwest::get(format!("{}/readyz", self.api)).await else {
            return false;
        };
        let text = r.text().await.unwrap_or_default();
        let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        state["leader"] == serde_json::Value::Bool(true)
    }

    /// `GET path`, with `token` as the bearer when given: the status and the body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.api));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        answer(request).await
    }

    /// `POST path` with the token: the status and the body.
    pub async fn post(&self, path: &str) -> (u16, String) {
        answer(
            reqwest::Client::new()
                .post(format!("{}{path}", self.api))
                .bearer_auth(TOKEN),
        )
        .await
    }

    pub async fn ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.api);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the daemon did not become ready:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it holds or `seconds` pass; the message says what never happened.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within {seconds} s");
}
