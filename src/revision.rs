//! Which revision of the rules folder is in force: its git commit. The only place rosterd
//! runs `git`; the rules themselves are read from files by [`crate::rules`], which stays
//! free of processes.

use std::path::Path;

/// The commit of the rules folder's own repository: `None` outside git, and when the
/// repository the folder is in does not track its files (an untracked copy inside another
/// checkout); `COMMIT-dirty` when the files differ from the commit.
pub fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty())?;
    // Files of the folder the commit holds: none means the folder is not what it versions.
    git(&["ls-files", "--", "."]).filter(|files| !files.is_empty())?;
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
        ".",
    ])
    .is_none_or(|changes| !changes.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}
