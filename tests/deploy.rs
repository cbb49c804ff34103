//! `deploy/` stays true to the code: the example config loads with every option, the
//! Kubernetes ConfigMap carries it word for word, every manifest parses, and the image and the
//! manifests run rosterd as a non-root user with the probes the daemon serves.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};

use serde::Deserialize as _;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy(name)).unwrap()
}

#[test]
fn the_example_config_loads_and_sets_every_daemon_option() {
    // Only this test in this binary touches the environment.
    std::env::set_var(
        "ROSTERD_DATABASE_URL",
        "postgres://rosterd:secret@db.example.com/rosterd",
    );
    let config = rosterd::config::Config::load(&deploy("rosterd.example.yaml")).unwrap();
    assert_eq!(
        config.database.expose(),
        "postgres://rosterd:secret@db.example.com/rosterd"
    );
    assert_eq!(config.daemon.time_zone, "Europe/Berlin");
    assert_eq!(config.targets.len(), 5);
    assert_eq!(
        config.targets["okta"].kind,
        rosterd::config::TargetKind::Okta,
        "the example shows a target of each kind"
    );
    assert_eq!(
        config.targets["google"].kind,
        rosterd::config::TargetKind::GoogleWorkspace,
        "the example shows a target of each kind"
    );
    assert_eq!(
        config.targets["directory"].kind,
        rosterd::config::TargetKind::Ldap,
        "the example shows a target of each kind"
    );
    let ui = config.ui.as_ref().expect("the example shows the console");
    assert!(ui.issuer.starts_with("https://") && ui.redirect_url.ends_with("/auth/callback"));
    assert!(!ui.approvers.is_empty() && !ui.viewers.is_empty());
    let text = read("rosterd.example.yaml");
    for provider in [
        "Okta",
        "Entra ID",
        "login.microsoftonline.com/",
        "/v2.0",
        "groups_claim",
    ] {
        assert!(
            text.contains(provider),
            "the example's ui: section does not show {provider}"
        );
    }
    for option in [
        "sync:",
        "reconcile:",
        "time_zone:",
        "listen:",
        "api_token_env:",
        "rules_poll_seconds:",
        "shutdown_timeout_seconds:",
        "leader_poll_seconds:",
        "database_env:",
        "max_shrink_percent:",
        "max_remove_count:",
        "unresolved_retry_seconds:",
        "user_cache_seconds:",
        "page_size:",
        "oauth2:",
        "tls:",
    ] {
        assert!(
            text.contains(option),
            "the example does not show `{option}`"
        );
    }
}

#[test]
fn the_configmap_carries_the_example_config_word_for_word() {
    let map: serde_yaml::Value = serde_yaml::from_str(&read("kubernetes/configmap.yaml")).unwrap();
    let embedded = map["data"]["rosterd.yaml"].as_str().unwrap();
    assert_eq!(embedded, read("rosterd.example.yaml"));
}

#[test]
fn every_manifest_parses_and_the_pods_run_as_non_root_with_probes() {
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(deploy("kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
        }
    }
    kinds.sort();
    for kind in [
        "ConfigMap",
        "Deployment",
        "Ingress",
        "Kustomization",
        "Secret",
        "Service",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    let deployment: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/deployment.yaml")).unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let rosterd = &pod["containers"][0];
    assert_eq!(rosterd["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(rosterd["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(pod["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "git-sync"));
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > 30,
        "the pod is killed before the daemon's 30 s shutdown"
    );

    assert!(read("kubernetes/secret.example.yaml").contains("ROSTERD_OIDC_CLIENT_SECRET"));

    let gitlab: serde_yaml::Value =
        serde_yaml::from_str(&read("ci/rules-repository.gitlab-ci.yml")).unwrap();
    let script = serde_yaml::to_string(&gitlab["rosterd"]["script"]).unwrap();
    assert!(script.contains("rosterd check") && script.contains("rosterd plan"));
    assert!(script.contains("rosterd test --config rosterd.ci.yaml --format junit"));
    assert_eq!(
        gitlab["rosterd"]["artifacts"]["reports"]["junit"],
        "rule-tests.xml"
    );
    assert!(!script.contains("| tee"), "a pipe hides the exit status");

    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("\nUSER 10001"),
        "the image runs as root"
    );
    let unit = read("rosterd.service");
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(unit.contains("NoNewPrivileges=yes"));
}

/// Every relative link in the README and the docs names a file of the repository: the
/// project's own language reference and guides, not a document outside it.
#[test]
fn the_readme_and_docs_link_to_files_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in [
        "README.md",
        "docs/rules-language.md",
        "docs/operations.md",
        "deploy/README.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let base = root.join(doc).parent().unwrap().to_path_buf();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let link = &rest[..rest.find(')').unwrap()];
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let path = link.split('#').next().unwrap();
            assert!(
                base.join(path).exists(),
                "{doc} links to `{link}`, which is not there"
            );
        }
        assert!(
            !text.contains("RULES-LANGUAGE.md"),
            "{doc} names a document outside the repository"
        );
    }
}

/// The deploy guide's step 3: `rosterd check` of the example config (its rules folder
/// pointed at rules for its targets and roles) exits 0 with none of the secrets set, the
/// database's and the HR export's included: `check` opens no database and sends nothing, and
/// an export it cannot have is noted, not an error.
#[test]
fn check_of_the_example_config_needs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/groups.yaml"),
        "groups:\n  - name: engineering\n    kind: managed\n    rule: division == \"Engineering\"\n    push: [slack, entra, okta]\n  - name: corpsec-approvers\n    kind: managed\n    rule: department == \"Security Engineering\"\n  - name: it-helpdesk\n    kind: managed\n    rule: department == \"IT\"\n",
    )
    .unwrap();
    let config = read("rosterd.example.yaml").replace("dir: /git/rules/rules", "dir: rules");
    std::fs::write(dir.path().join("rosterd.yaml"), config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("check")
        .current_dir(dir.path())
        .env_remove("ROSTERD_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("note: the HR export was not read"),
        "{stdout}"
    );
    // A command that opens the database says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("runs")
        .current_dir(dir.path())
        .env_remove("ROSTERD_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("database_env: the environment variable `ROSTERD_DATABASE_URL` is not set"),
        "{stderr}"
    );
}

/// The manifests as `kubectl kustomize deploy/kubernetes` renders them when kubectl is
/// installed; else the documents of the files the kustomization lists (what it renders,
/// less the namespace and image it sets).
fn rendered() -> Vec<serde_yaml::Value> {
    let documents = |text: &str| -> Vec<serde_yaml::Value> {
        serde_yaml::Deserializer::from_str(text)
            .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    };
    let dir = deploy("kubernetes");
    if let Ok(out) = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
    {
        assert!(
            out.status.success(),
            "kubectl kustomize: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("rendered with kubectl kustomize");
        return documents(&String::from_utf8(out.stdout).unwrap());
    }
    let kustomization: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/kustomization.yaml")).unwrap();
    kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|file| documents(&read(&format!("kubernetes/{}", file.as_str().unwrap()))))
        .collect()
}

/// The paths a router in `file` serves (`.route("PATH", ...)`).
fn routes_of(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    text.match_indices(".route(\"")
        .map(|(at, m)| {
            let rest = &text[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Every route the web console and the admin API serve reaches the daemon through an
/// Ingress of the rendered manifests, at the Service port whose target is the container's
/// port (a form posting to a path no Ingress routes would answer 404); `/metrics` and the
/// probes are routed by none.
#[test]
fn every_console_and_api_route_is_routed_by_an_ingress() {
    let docs = rendered();
    let of_kind = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind);
    let service = of_kind("Service")
        .find(|s| s["metadata"]["name"] == "rosterd")
        .expect("the rosterd Service");
    let deployment = of_kind("Deployment").next().expect("the Deployment");
    let container_ports: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]
        ["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Each Ingress path: its path, whether Exact, and the Service port it reaches.
    let mut paths: Vec<(String, bool)> = Vec::new();
    let ingresses: Vec<&serde_yaml::Value> = of_kind("Ingress").collect();
    assert!(ingresses.len() >= 2, "the console's and the API's");
    for ingress in &ingresses {
        assert!(
            ingress["spec"]["tls"]
                .as_sequence()
                .is_some_and(|t| !t.is_empty()),
            "TLS: {ingress:?}"
        );
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
            .as_sequence()
            .unwrap()
        {
            let backend = &p["backend"]["service"];
            assert_eq!(backend["name"], "rosterd", "{p:?}");
            let port = backend["port"]["name"].as_str().unwrap();
            let target = service["spec"]["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|sp| sp["name"] == port)
                .unwrap_or_else(|| panic!("the Service has no port `{port}`"))["targetPort"]
                .as_str()
                .unwrap();
            assert!(
                container_ports.contains(&target),
                "{target} is not a container port"
            );
            paths.push((
                p["path"].as_str().unwrap().to_string(),
                p["pathType"] == "Exact",
            ));
        }
    }
    let routed = |route: &str| {
        paths.iter().any(|(path, exact)| match exact {
            true => route == path,
            // Prefix matches whole path segments.
            false => {
                route == path || route.starts_with(&format!("{}/", path.trim_end_matches('/')))
            }
        })
    };
    let console = routes_of("src/daemon/ui/mod.rs");
    let api = routes_of("src/daemon/api.rs");
    assert!(console.len() > 10 && api.len() > 10, "{console:?} {api:?}");
    for route in console.iter().chain(&api) {
        let internal = ["/metrics", "/healthz", "/readyz"].contains(&route.as_str());
        assert_eq!(
            routed(route),
            !internal,
            "{route}: {} by an Ingress ({paths:?})",
            if internal { "routed" } else { "not routed" }
        );
    }
    assert!(api.iter().any(|r| r.starts_with("/api/v1/")));
}

/// A machine's paths (`/etc/rosterd`, `/var/lib/rosterd`) under a temporary folder, holding
/// the sample organisation (config, export, rules) as an operator installs it: the config at
/// `/etc/rosterd/rosterd.yaml`, SQLite state in `/var/lib/rosterd` as the deploy guide says,
/// the daemon's API on a free port.
struct Machine {
    root: tempfile::TempDir,
    port: u16,
}

impl Machine {
    fn new() -> Machine {
        let root = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let machine = Machine { root, port };
        let etc = machine.path("/etc/rosterd");
        std::fs::create_dir_all(etc.join("sample")).unwrap();
        std::fs::create_dir_all(machine.path("/var/lib/rosterd")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(
            repo.join("sample/workers.csv"),
            etc.join("sample/workers.csv"),
        )
        .unwrap();
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(repo.join("rules"))
            .arg(etc.join("rules"))
            .status()
            .unwrap();
        assert!(status.success());
        let config = std::fs::read_to_string(repo.join("rosterd.yaml"))
            .unwrap()
            .replace(
                "database: sqlite://rosterd.db",
                &format!(
                    "database: sqlite://{}",
                    machine.path("/var/lib/rosterd/rosterd.db").display()
                ),
            )
            .replace(
                "listen: 127.0.0.1:9464",
                &format!("listen: 127.0.0.1:{}", machine.port),
            );
        std::fs::write(etc.join("rosterd.yaml"), config).unwrap();
        machine
    }

    /// An absolute path of the machine, under the temporary folder.
    fn path(&self, path: &str) -> PathBuf {
        self.root.path().join(path.trim_start_matches('/'))
    }

    /// Every absolute path of the machine in `arg`, under the temporary folder.
    fn map(&self, arg: &str) -> String {
        ["/etc/rosterd", "/var/lib/rosterd"]
            .iter()
            .fold(arg.to_string(), |a, p| {
                a.replace(p, &self.path(p).display().to_string())
            })
    }

    /// `GET path` of the daemon's API: the status, if it answers.
    fn status_of(&self, path: &str) -> Option<u16> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: rosterd\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split_whitespace().nth(1)?.parse().ok()
    }

    /// Runs the rosterd binary with `args` (the example's, its paths on this machine) in
    /// `dir` with `env`, until `/readyz` answers 200; then SIGHUP leaves it serving, and
    /// SIGTERM stops it with exit 0 within `stop_seconds`. Its log.
    fn start_and_stop(
        &self,
        args: &[String],
        dir: &Path,
        env: &[(String, String)],
        stop_seconds: u64,
    ) -> String {
        let log = self.path("/var/lib/rosterd/daemon.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::fs::File::create(self.path("/var/lib/rosterd/stdout.log")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let ready = |seconds: u64| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
            while std::time::Instant::now() < deadline {
                if self.status_of("/readyz") == Some(200) {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            false
        };
        let pid = child.id().to_string();
        let signal = |name: &str| {
            let status = std::process::Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap();
            assert!(status.success());
        };
        if !ready(30) {
            let _ = child.kill();
            panic!("the daemon did not become ready:\n{}", read_log());
        }
        signal("-HUP");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP stopped it:\n{}",
            read_log()
        );
        assert!(ready(10), "not serving after SIGHUP:\n{}", read_log());
        signal("-TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(stop_seconds);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{status}:\n{}", read_log());
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "not stopped {stop_seconds} s after SIGTERM:\n{}",
                    read_log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            self.path("/var/lib/rosterd/rosterd.db").exists(),
            "the state is where the guide says"
        );
        read_log()
    }
}

/// The systemd unit as shipped: `systemd-analyze verify` accepts it (when installed; its
/// binary path pointed at the one built), and its `ExecStart`, run in its
/// `WorkingDirectory` with the variables of its `EnvironmentFile`, starts the daemon,
/// which keeps serving after `ExecReload`'s SIGHUP and stops on its `KillSignal` within
/// `TimeoutStopSec`.
#[test]
fn the_systemd_unit_starts_the_daemon() {
    let unit = read("rosterd.service");
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}"))
            .to_string()
    };
    let exec: Vec<String> = value("ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/rosterd");
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert_eq!(value("StateDirectory"), "rosterd");
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("rosterd.service");
        std::fs::write(
            &copy,
            unit.replace("/usr/local/bin/rosterd", env!("CARGO_BIN_EXE_rosterd")),
        )
        .unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("no systemd-analyze: the unit's syntax is not verified");
    }
    let machine = Machine::new();
    let env_file = machine.path(&value("EnvironmentFile"));
    std::fs::write(&env_file, "ROSTERD_API_TOKEN=a-token-from-the-env-file\n").unwrap();
    let env: Vec<(String, String)> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<String> = exec[1..].iter().map(|a| machine.map(a)).collect();
    let dir = machine.path(&value("WorkingDirectory"));
    let stop: u64 = value("TimeoutStopSec").parse().unwrap();
    let log = machine.start_and_stop(&args, &dir, &env, stop);
    assert!(log.contains("reload"), "SIGHUP reloaded:\n{log}");
}

/// The image's command as the Dockerfile gives it (`ENTRYPOINT` and `CMD`), with the mounts
/// and variables of its `docker run` example, starts the daemon as the image would run it
/// (no image is built: the test machine has no container runtime).
#[test]
fn the_images_command_starts_the_daemon() {
    let dockerfile = read("Dockerfile");
    let json = |key: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key}"));
        serde_json::from_str(line).unwrap()
    };
    let entrypoint = json("ENTRYPOINT");
    assert_eq!(entrypoint.last().unwrap(), "/usr/local/bin/rosterd");
    let cmd = json("CMD");
    let workdir = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("WORKDIR /var"))
        .map(|rest| format!("/var{rest}"))
        .unwrap();
    // The example's `docker run`: its -e variables and -v mounts.
    let run = dockerfile
        .lines()
        .find(|l| l.contains("docker run"))
        .unwrap();
    let words: Vec<&str> = run.split_whitespace().collect();
    let env: Vec<(String, String)> = words
        .windows(2)
        .filter(|w| w[0] == "-e")
        .map(|w| {
            let (k, _) = w[1].split_once('=').unwrap();
            (k.to_string(), format!("value-of-{k}"))
        })
        .collect();
    let mounts: Vec<&str> = words
        .windows(2)
        .filter(|w| w[0] == "-v")
        .map(|w| w[1].split(':').nth(1).unwrap())
        .collect();
    assert!(
        env.iter().any(|(k, _)| k == "ROSTERD_DATABASE_URL")
            && env.iter().any(|(k, _)| k == "ROSTERD_API_TOKEN"),
        "the example names the database and the API token: {run}"
    );
    assert!(
        mounts.contains(&"/etc/rosterd/rosterd.yaml") && mounts.contains(&"/etc/rosterd/rules"),
        "the example mounts the config and the rules: {run}"
    );
    let machine = Machine::new();
    // The config reads its database from ROSTERD_DATABASE_URL, as the example sets it.
    let config = machine.path("/etc/rosterd/rosterd.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let database = text
        .lines()
        .find(|l| l.starts_with("database:"))
        .unwrap()
        .to_string();
    std::fs::write(
        &config,
        text.replace(&database, "database_env: ROSTERD_DATABASE_URL"),
    )
    .unwrap();
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "ROSTERD_DATABASE_URL" => (k, database.trim_start_matches("database: ").to_string()),
            _ => (k, v),
        })
        .collect();
    let args: Vec<String> = cmd.iter().map(|a| machine.map(a)).collect();
    let log = machine.start_and_stop(&args, &machine.path(&workdir), &env, 40);
    // `--json-logs`: one JSON object a line.
    let first = log.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{log}"
    );
}
