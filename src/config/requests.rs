//! `requests:`: where access requests and reviews land, as commits in the rules repository.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Access requests and reviews write their decisions as commits to the rules repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsConfig {
    pub repository: RepositoryConfig,
    /// Commit to `repository.branch` itself instead of a branch for review: for a
    /// repository without merge requests. Off by default: a decision is a proposal that the
    /// repository's own checks and reviewers judge.
    #[serde(default)]
    pub direct_commit: bool,
    /// rosterd's own clone of the repository (relative to the config file's folder).
    #[serde(default = "default_workdir")]
    pub workdir: PathBuf,
    /// The commits' author and committer.
    #[serde(default = "default_author_name")]
    pub author_name: String,
    #[serde(default = "default_author_email")]
    pub author_email: String,
}

/// The rules repository's remote and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// `https://…`, `ssh://…`, `git@host:path`, `git://…` or a local path. Credentials do
    /// not belong here: use `token_env` or `ssh_key_file`.
    pub remote: String,
    /// The branch the daemon's rules come from, and that proposals are made against.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The rules folder inside the repository (`.` for its root).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The environment variable holding an HTTPS token (sent as Basic auth with
    /// `token_user`); never written to a file, a log or git's config.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Or a file holding it (a mounted secret; relative to the config file's folder), read
    /// at each use so that a rotated token is picked up.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_token_user")]
    pub token_user: String,
    /// A deploy key for an SSH remote (relative to the config file's folder).
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// The known_hosts file an SSH remote's host key is checked against.
    #[serde(default)]
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// GitLab: open the merge request with push options when the branch is pushed.
    #[serde(default)]
    pub gitlab: bool,
    /// The repository's web address, for the link to the change (GitHub-style
    /// `/compare/BASE...BRANCH`, or GitLab's new merge request page).
    #[serde(default)]
    pub web_url: Option<String>,
}

fn default_workdir() -> PathBuf {
    PathBuf::from(".rosterd/rules-repository")
}

fn default_author_name() -> String {
    "rosterd".into()
}

fn default_author_email() -> String {
    "rosterd@localhost".into()
}

fn default_branch() -> String {
    "main".into()
}

fn default_path() -> PathBuf {
    PathBuf::from(".")
}

fn default_token_user() -> String {
    "x-access-token".into()
}

impl RequestsConfig {
    /// Paths relative to the config file's folder made absolute.
    pub(super) fn resolve(&mut self, base: &Path) {
        self.workdir = base.join(&self.workdir);
        for file in [
            &mut self.repository.ssh_key_file,
            &mut self.repository.ssh_known_hosts_file,
            &mut self.repository.token_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let repo = &self.repository;
        if repo.remote.trim().is_empty() {
            return Err("requests.repository.remote: must not be empty".into());
        }
        if let Ok(url) = url::Url::parse(&repo.remote) {
            if url.password().is_some() {
                return Err("requests.repository.remote: holds a password; keep it out of the config\nhelp: put the token in an environment variable and name it in `requests.repository.token_env`".into());
            }
        }
        if repo.token_env.is_some() && repo.token_file.is_some() {
            return Err(
                "requests.repository: give the token by `token_env` or `token_file`, not both"
                    .into(),
            );
        }
        if !crate::names::is_branch_name(&repo.branch) {
            return Err(format!(
                "requests.repository.branch: `{}` is not a branch name",
                repo.branch
            ));
        }
        if repo.path.is_absolute()
            || repo
                .path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!(
                "requests.repository.path: `{}` must be a folder inside the repository",
                repo.path.display()
            ));
        }
        let bad_email = |e: &str| {
            !e.contains('@') || e.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        };
        if self.author_name.trim().is_empty()
            || self.author_name.contains(['<', '>', '\n'])
            || bad_email(&self.author_email)
        {
            return Err("requests.author_name and requests.author_email: give a name and an email address for rosterd's commits".into());
        }
        Ok(())
    }
}
