//! A private OpenLDAP server (Debian's `slapd`, which `scripts/test` installs) for the LDAP
//! push tests: its own database in a temporary folder, TLS only (`ldaps://`, with a CA made
//! for the test run), on a free port of 127.0.0.1; the organisation's users as
//! `inetOrgPerson` entries under `ou=people`. The tests read the directory back with their
//! own connection, as an administrator would.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
pub const ADMIN: &str = "cn=admin,dc=example,dc=com";
/// The account rosterd binds as: it may write groups and read users, no more.
pub const ROSTERD: &str = "cn=rosterd,ou=services,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "admin-test-secret";
pub const ROSTERD_PASSWORD: &str = "rosterd-test-secret";

/// The slapd binary: `ROSTERD_TEST_SLAPD`, or Debian's. `None` (with a note) when there is
/// none, except in CI, where the suite must run against it.
pub fn slapd_binary() -> Option<PathBuf> {
    let path = std::env::var("ROSTERD_TEST_SLAPD")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/sbin/slapd")).filter(|p| p.exists()));
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but there is no slapd (ROSTERD_TEST_SLAPD): run the suite with scripts/test"
        );
        eprintln!("no slapd (run the suite with scripts/test): skipping");
    }
    path
}

/// A CA and a server certificate for 127.0.0.1, made once a test process.
fn certificates() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rosterd-test-ldap-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&dir).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=rosterd LDAP test CA", "-keyout", "ca.key", "-out", "ca.crt"]);
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30", "-extfile", "san.ext", "-out", "server.crt"]);
        dir
    })
}

pub struct Slapd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    /// A server holding `ou=people` with a user for each of `emails` (`uid` the address's
    /// local part), `ou=groups`, and rosterd's service account.
    pub async fn start(binary: &Path, emails: &[String]) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let tls = certificates();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let config = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
TLSCACertificateFile {tls}/ca.crt
TLSCertificateFile {tls}/server.crt
TLSCertificateKeyFile {tls}/server.key
sizelimit unlimited
database mdb
suffix \"{SUFFIX}\"
rootdn \"{ADMIN}\"
rootpw {ADMIN_PASSWORD}
directory {dir}/db
maxsize 1073741824
index objectClass,entryUUID eq
index cn,uid,mail eq
sortvals member
access to attrs=userPassword by self auth by anonymous auth by * none
access to dn.subtree=\"{GROUPS}\" by dn.exact=\"{ROSTERD}\" write by * none
access to * by dn.exact=\"{ROSTERD}\" read by * none
",
            dir = dir.path().display(),
            tls = tls.display(),
        );
        std::fs::write(dir.path().join("slapd.conf"), config).unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .args(["-d", "0", "-f"])
            .arg(dir.path().join("slapd.conf"))
            .args(["-h", &format!("ldaps://127.0.0.1:{port}/")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server = Slapd { child, dir, port };
        let start = Instant::now();
        let mut ldap = loop {
            match server.connect().await {
                Ok(ldap) => break ldap,
                Err(e) => {
                    assert!(start.elapsed() < Duration::from_secs(20), "slapd did not start: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
        let entries: Vec<(String, Vec<(String, HashSet<String>)>)> = vec![
            (SUFFIX.into(), vec![("objectClass".into(), set(&["dcObject", "organization"])), ("o".into(), set(&["Example"])), ("dc".into(), set(&["example"]))]),
            (PEOPLE.into(), vec![("objectClass".into(), set(&["organizationalUnit"])), ("ou".into(), set(&["people"]))]),
            (GROUPS.into(), vec![("objectClass".into(), set(&["organizationalUnit"])), ("ou".into(), set(&["groups"]))]),
            ("ou=services,dc=example,dc=com".into(), vec![("objectClass".into(), set(&["organizationalUnit"])), ("ou".into(), set(&["services"]))]),
            (ROSTERD.into(), vec![("objectClass".into(), set(&["person", "simpleSecurityObject"])), ("cn".into(), set(&["rosterd"])), ("sn".into(), set(&["rosterd"])), ("userPassword".into(), set(&[ROSTERD_PASSWORD]))]),
        ];
        for (dn, attrs) in entries {
            ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        }
        for email in emails {
            server.add_user_on(&mut ldap, email).await;
        }
        server
    }

    pub fn url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        certificates().join("ca.crt")
    }

    async fn connect(&self) -> Result<Ldap, ldap3::LdapError> {
        let pem = std::fs::read(self.ca_file()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let settings = LdapConnSettings::new().set_config(std::sync::Arc::new(config));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url()).await?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// A connection bound as the directory's administrator.
    pub async fn admin(&self) -> Ldap {
        let mut ldap = self.connect().await.unwrap();
        ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
        ldap
    }

    /// The DN of the user with this address.
    pub fn user_dn(email: &str) -> String {
        let uid = email.split('@').next().unwrap().to_lowercase();
        format!("uid={},{PEOPLE}", ldap3::dn_escape(uid.as_str()))
    }

    async fn add_user_on(&self, ldap: &mut Ldap, email: &str) {
        let uid = email.split('@').next().unwrap().to_lowercase();
        let one = |v: &str| HashSet::from([v.to_string()]);
        let attrs = vec![
            ("objectClass".to_string(), one("inetOrgPerson")),
            ("uid".to_string(), one(&uid)),
            ("cn".to_string(), one(&uid)),
            ("sn".to_string(), one(&uid)),
            ("mail".to_string(), one(email)),
        ];
        ldap.add(&Slapd::user_dn(email), attrs).await.unwrap().success().unwrap();
    }

    pub async fn add_user(&self, email: &str) {
        let mut ldap = self.admin().await;
        self.add_user_on(&mut ldap, email).await;
    }

    /// Every user under `ou=people`: DN (lower case) → address (lower case).
    pub async fn users(&self) -> BTreeMap<String, String> {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(PEOPLE, Scope::OneLevel, "(objectClass=inetOrgPerson)", vec!["mail"])
            .await
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| (e.dn.to_lowercase(), e.attrs["mail"][0].to_lowercase()))
            .collect()
    }

    /// Every group under `ou=groups`: cn → its `member` values as stored (the placeholder
    /// left out).
    pub async fn groups_raw(&self) -> BTreeMap<String, Vec<String>> {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(GROUPS, Scope::Subtree, "(objectClass=groupOfNames)", vec!["cn", "member"])
            .await
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| {
                let members = e.attrs.get("member").cloned().unwrap_or_default();
                (
                    e.attrs["cn"][0].clone(),
                    members.into_iter().filter(|m| !m.is_empty()).collect(),
                )
            })
            .collect()
    }

    /// How many groups under `ou=groups` are named `cn`.
    pub async fn group_count(&self, cn: &str) -> usize {
        self.groups_raw_all().await.iter().filter(|n| n.as_str() == cn).count()
    }

    async fn groups_raw_all(&self) -> Vec<String> {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(GROUPS, Scope::Subtree, "(objectClass=groupOfNames)", vec!["cn"])
            .await
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .map(|e| SearchEntry::construct(e).attrs["cn"][0].clone())
            .collect()
    }

    /// Every group: cn → its members' addresses (lower case), members that are no user
    /// left out.
    pub async fn groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let users = self.users().await;
        self.groups_raw()
            .await
            .into_iter()
            .map(|(cn, members)| {
                let emails = members
                    .iter()
                    .filter_map(|m| users.get(&m.to_lowercase()).cloned())
                    .collect();
                (cn, emails)
            })
            .collect()
    }

    /// Adds and deletes `member` values of the group `cn` by hand, as an administrator
    /// would with ldapmodify.
    pub async fn edit_members(&self, cn: &str, add: &[String], remove: &[String]) {
        let mut ldap = self.admin().await;
        let dn = format!("cn={},{GROUPS}", ldap3::dn_escape(cn));
        let mut mods = Vec::new();
        if !add.is_empty() {
            mods.push(Mod::Add("member".to_string(), add.iter().cloned().collect()));
        }
        if !remove.is_empty() {
            mods.push(Mod::Delete("member".to_string(), remove.iter().cloned().collect()));
        }
        ldap.modify(&dn, mods).await.unwrap().success().unwrap();
    }

    /// Renames the group `from` to `to` (`modrdn`), as an administrator would.
    pub async fn rename(&self, from: &str, to: &str) {
        let mut ldap = self.admin().await;
        let dn = format!("cn={},{GROUPS}", ldap3::dn_escape(from));
        let rdn = format!("cn={}", ldap3::dn_escape(to));
        ldap.modifydn(&dn, &rdn, true, None).await.unwrap().success().unwrap();
    }

    /// Makes a group by hand (for a link), with these members' DNs.
    pub async fn add_group(&self, cn: &str, members: &[String]) {
        let mut ldap = self.admin().await;
        let dn = format!("cn={},{GROUPS}", ldap3::dn_escape(cn));
        let mut values: HashSet<String> = members.iter().cloned().collect();
        values.insert(String::new());
        let attrs = vec![
            ("objectClass".to_string(), HashSet::from(["groupOfNames".to_string()])),
            ("cn".to_string(), HashSet::from([cn.to_string()])),
            ("member".to_string(), values),
        ];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap();
    }

    /// Deletes every group under `ou=groups`: a directory restored without them.
    pub async fn delete_groups(&self) {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(GROUPS, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
            .await
            .unwrap()
            .success()
            .unwrap();
        for e in entries {
            let dn = SearchEntry::construct(e).dn;
            ldap.delete(&dn).await.unwrap().success().unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
