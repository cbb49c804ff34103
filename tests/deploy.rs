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
    assert_eq!(config.targets.len(), 4);
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

    // The console is exposed; the API and the metrics are not.
    let ingress: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/ingress.yaml")).unwrap();
    let paths: Vec<&str> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/auth") && paths.contains(&"/holds"),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/api") || *p == "/metrics"),
        "{paths:?}"
    );
    // Every route the console serves (read from its router) reaches it through the Ingress:
    // a button whose form posts to a path the Ingress does not route would answer 404.
    let router =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon/ui/mod.rs"))
            .unwrap();
    let routes: Vec<&str> = router
        .match_indices(".route(\"")
        .map(|(at, m)| {
            let rest = &router[at + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert!(routes.len() > 10, "{routes:?}");
    let exact: Vec<(&str, bool)> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap(),
                p["pathType"].as_str() == Some("Exact"),
            )
        })
        .collect();
    for route in &routes {
        let routed = exact.iter().any(|(path, exact)| match exact {
            true => route == path,
            // Prefix matches whole path segments.
            false => *route == *path || route.starts_with(&format!("{path}/")),
        });
        assert!(
            routed,
            "the console's {route} is not routed by the Ingress ({exact:?})"
        );
    }
    assert!(read("kubernetes/kustomization.yaml").contains("ingress.yaml"));
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
