//! rosterd's own clone of the rules repository, driven through the `git` command: fetch,
//! branch, commit, push. Credentials go to git through its environment only (never its
//! config, its command line or a file), and what git prints is scrubbed of them before
//! it reaches an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::RequestsConfig;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("requests.repository.token_env: the environment variable `{0}` is not set")]
    TokenUnset(String),
    #[error("requests.repository.token_file: cannot read {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl GitError {
    /// Whether the remote refused a push because its branch moved on.
    pub fn is_rejected_push(&self) -> bool {
        matches!(self, GitError::Failed { stderr, .. }
            if stderr.contains("[rejected]") || stderr.contains("non-fast-forward") || stderr.contains("fetch first"))
    }
}

/// One user of the clone at a time in this process: a console approval, a review from the
/// console and the daemon following its requests each check out, fetch or commit there.
pub static CLONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The clone and how to reach its remote.
pub struct Repo {
    dir: PathBuf,
    remote: String,
    branch: String,
    author: (String, String),
    /// `http.extraHeader` for an HTTPS token, passed in git's environment.
    header: Option<Secret>,
    ssh_command: Option<String>,
}

impl Repo {
    pub fn new(config: &RequestsConfig) -> Result<Self, GitError> {
        let repo = &config.repository;
        let token = match (&repo.token_env, &repo.token_file) {
            (Some(var), _) => {
                Some(std::env::var(var).map_err(|_| GitError::TokenUnset(var.clone()))?)
            }
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|source| GitError::TokenFile {
                    path: file.clone(),
                    source,
                })?;
                Some(text.trim().to_string())
            }
            (None, None) => None,
        };
        let header = match token {
            Some(token) => {
                let basic = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{}:{token}", repo.token_user),
                );
                Some(Secret::new(format!("Authorization: Basic {basic}")))
            }
            None => None,
        };
        let ssh_command = repo.ssh_key_file.as_ref().map(|key| {
            let mut cmd = format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes",
                key.display()
            );
            if let Some(hosts) = &repo.ssh_known_hosts_file {
                cmd.push_str(&format!(
                    " -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{}'",
                    hosts.display()
                ));
            }
            cmd
        });
        Ok(Repo {
            dir: config.workdir.clone(),
            remote: repo.remote.clone(),
            branch: repo.branch.clone(),
            author: (config.author_name.clone(), config.author_email.clone()),
            header,
            ssh_command,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The branch proposals are made against.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The clone, made when missing, at the remote branch's newest commit on a local
    /// branch `work`, with nothing else in the working tree; that commit.
    pub fn start(&self, work: &str) -> Result<String, GitError> {
        let base = self.fetched()?;
        self.git(&["checkout", "--force", "-B", work, &base])?;
        self.git(&["clean", "-fdx", "--quiet"])?;
        self.git(&["rev-parse", "HEAD"])
    }

    /// The clone, made when missing, with the remote branch fetched now; its name there
    /// (`origin/BRANCH`).
    fn fetched(&self) -> Result<String, GitError> {
        if !self.dir.join(".git").exists() {
            if let Some(parent) = self.dir.parent() {
                std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let dir = self.dir.display().to_string();
            self.git_in(
                None,
                &[
                    "clone",
                    "--no-checkout",
                    "--origin",
                    "origin",
                    "--",
                    &self.remote,
                    &dir,
                ],
            )?;
        }
        let tracking = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        self.git(&["fetch", "--prune", "origin", &tracking])?;
        Ok(format!("origin/{}", self.branch))
    }

    /// Which of `words` the remote's main branch, fetched now, has in the files at `path`
    /// (inside the repository), each as a whole word: how requests' tickets are found
    /// merged, whether the merge was a merge commit, a squash or a rebase. One fetch and
    /// one `git grep` for them all.
    pub fn branch_has(
        &self,
        path: &Path,
        words: &[String],
    ) -> Result<std::collections::BTreeSet<String>, GitError> {
        if words.is_empty() {
            return Ok(Default::default());
        }
        let tree = self.fetched()?;
        let path = path.display().to_string();
        let mut args = vec!["grep", "--only-matching", "-h", "-w", "-F"];
        for w in words {
            args.extend(["-e", w.as_str()]);
        }
        args.extend([tree.as_str(), "--", path.as_str()]);
        match self.run(Some(&self.dir), &args, &[], None) {
            Ok(out) => Ok(out
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| words.contains(l))
                .collect()),
            // git grep says "not found" by exiting 1 with nothing on stderr.
            Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => Ok(Default::default()),
            Err(e) => Err(e),
        }
    }

    /// Commits `file` (inside the clone) with `message`; the new commit.
    pub fn commit(&self, file: &Path, message: &str) -> Result<String, GitError> {
        let file = file.display().to_string();
        self.git(&["add", "--", &file])?;
        let (name, email) = &self.author;
        let ident = [
            ("GIT_AUTHOR_NAME", name),
            ("GIT_AUTHOR_EMAIL", email),
            ("GIT_COMMITTER_NAME", name),
            ("GIT_COMMITTER_EMAIL", email),
        ];
        self.run(
            Some(&self.dir),
            &["commit", "--quiet", "--no-verify", "--file", "-"],
            &ident,
            Some(message),
        )?;
        self.git(&["rev-parse", "HEAD"])
    }

    /// Pushes HEAD to the remote's `branch`, with GitLab's push options when `merge_request`
    /// names the merge request's title.
    pub fn push(&self, branch: &str, merge_request: Option<&str>) -> Result<(), GitError> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        let mut args = vec!["push".to_string(), "--porcelain".into()];
        if let Some(title) = merge_request {
            for option in [
                "merge_request.create".to_string(),
                format!("merge_request.target={}", self.branch),
                format!("merge_request.title={title}"),
                "merge_request.remove_source_branch".into(),
            ] {
                args.push("-o".into());
                args.push(option);
            }
        }
        args.extend(["origin".into(), refspec]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args).map(|_| ())
    }

    fn git(&self, args: &[&str]) -> Result<String, GitError> {
        self.git_in(Some(&self.dir), args)
    }

    fn git_in(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
        self.run(dir, args, &[], None)
    }

    fn run(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        env: &[(&str, &String)],
        stdin: Option<&str>,
    ) -> Result<String, GitError> {
        let mut cmd = Command::new("git");
        if let Some(dir) = dir {
            cmd.arg("-C").arg(dir);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(header) = &self.header {
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header.expose());
        }
        if let Some(ssh) = &self.ssh_command {
            cmd.env("GIT_SSH_COMMAND", ssh);
        }
        let mut child = cmd.spawn().map_err(GitError::Spawn)?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write as _;
            pipe.write_all(text.as_bytes()).map_err(GitError::Spawn)?;
        }
        let out = child.wait_with_output().map_err(GitError::Spawn)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        Err(GitError::Failed {
            args: scrub(&args.join(" ")),
            stderr: scrub(format!("{}\n{}", stderr.trim(), stdout.trim()).trim()),
        })
    }
}

/// `text` with any `user:password@` of a URL in it replaced by `***@`.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(a) => {
                out.push_str("***");
                out.push_str(&tail[a..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn credentials_in_urls_are_scrubbed() {
        assert_eq!(
            scrub(
                "fatal: unable to access 'https://bot:ghp_secret@github.com/acme/rules.git/': 403"
            ),
            "fatal: unable to access 'https://***@github.com/acme/rules.git/': 403"
        );
        assert_eq!(
            scrub("git://127.0.0.1:9418/r.git x"),
            "git://127.0.0.1:9418/r.git x"
        );
        assert_eq!(scrub("no url here"), "no url here");
    }
}
