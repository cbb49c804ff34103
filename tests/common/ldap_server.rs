//! Real directory servers for the LDAP push tests, both from Debian's packages (which
//! `scripts/test` installs):
//!
//! - OpenLDAP's `slapd`: a private server per test, its own database in a temporary
//!   folder, TLS only (`ldaps://`, with a CA made for the test run), on a free port; rosterd
//!   binds as a service account that may write groups and read users.
//! - Samba's Active Directory domain controller: provisioned once per test process
//!   (`samba-tool domain provision`), only its LDAP service started, on the ports AD uses
//!   (389 and 636 of 127.0.0.1, so one test at a time holds it); each test gets the domain
//!   with `OU=People` and `OU=Groups` made afresh. rosterd binds as the domain's
//!   Administrator.
//!
//! The organisation's users are `inetOrgPerson` (OpenLDAP) or `user` (AD) entries under the
//! people base. The tests read the directory back with their own connection, as an
//! administrator would.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};

/// An entry's attributes, as `ldap3` adds them.
type Attrs = Vec<(String, HashSet<String>)>;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Openldap,
    Samba,
}

const OPENLDAP_ADMIN_PASSWORD: &str = "admin-test-secret";
/// The password rosterd binds with (OpenLDAP's service account, Samba's Administrator).
pub const ROSTERD_PASSWORD: &str = "Rosterd-Test-Secret-1";

/// slapd and samba: `ROSTERD_TEST_SLAPD` / `ROSTERD_TEST_SAMBA`, or Debian's. `None` (with
/// a note) when there is none, except in CI, where the suite must run against it.
pub fn binary(flavor: Flavor) -> Option<PathBuf> {
    let (var, default) = match flavor {
        Flavor::Openldap => ("ROSTERD_TEST_SLAPD", "/usr/sbin/slapd"),
        Flavor::Samba => ("ROSTERD_TEST_SAMBA", "/usr/sbin/samba"),
    };
    let path = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(default)).filter(|p| p.exists()));
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but there is no {default} ({var}): run the suite with scripts/test"
        );
        eprintln!("no {default} (run the suite with scripts/test): skipping");
    }
    path
}

/// A CA and a server certificate for 127.0.0.1, made once a test process.
fn certificates() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("rosterd-test-ldap-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=rosterd LDAP test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        // rosterd's client certificate, for a SASL EXTERNAL bind (slapd maps `cn=rosterd`
        // to its service account).
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=rosterd",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ]);
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "client.ext",
            "-out",
            "client.crt",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        std::fs::set_permissions(
            dir.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        dir
    })
}

pub struct Server {
    pub flavor: Flavor,
    /// slapd's process; Samba's is the test process's, shared.
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    pub port: u16,
    /// slapd's plain `ldap://` port, for StartTLS.
    pub plain_port: Option<u16>,
    /// Held while a test uses the one Samba.
    _exclusive: Option<tokio::sync::MutexGuard<'static, ()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// A server of `flavor` holding the people base with a user for each of `emails`, the
    /// group base, and (OpenLDAP) rosterd's service account; `None` outside CI without it.
    pub async fn start(flavor: Flavor, emails: &[String]) -> Option<Server> {
        let binary = binary(flavor)?;
        let server = match flavor {
            Flavor::Openldap => Server::start_slapd(&binary).await,
            Flavor::Samba => {
                static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
                let guard = ONE_AT_A_TIME.lock().await;
                let port = tokio::task::spawn_blocking(move || samba(&binary))
                    .await
                    .unwrap();
                Server {
                    flavor,
                    child: None,
                    _dir: None,
                    port,
                    plain_port: None,
                    _exclusive: Some(guard),
                }
            }
        };
        let mut ldap = server.admin().await;
        server.reset(&mut ldap).await;
        for email in emails {
            server.add_user_on(&mut ldap, email).await;
        }
        Some(server)
    }

    async fn start_slapd(binary: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let tls = certificates();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let (suffix, admin, groups, rosterd) = (
            "dc=example,dc=com",
            "cn=admin,dc=example,dc=com",
            "ou=groups,dc=example,dc=com",
            "cn=rosterd,ou=services,dc=example,dc=com",
        );
        let config = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload back_monitor
pidfile {dir}/slapd.pid
TLSCACertificateFile {tls}/ca.crt
TLSCertificateFile {tls}/server.crt
TLSCertificateKeyFile {tls}/server.key
TLSVerifyClient try
authz-regexp \"^cn=rosterd$\" \"{rosterd}\"
sizelimit unlimited
database mdb
suffix \"{suffix}\"
rootdn \"{admin}\"
rootpw {OPENLDAP_ADMIN_PASSWORD}
directory {dir}/db
maxsize 34359738368
dbnosync
index objectClass,entryUUID eq
index cn,uid,mail eq
sortvals member
multival member 200,50
access to attrs=userPassword by self auth by anonymous auth by * none
access to dn.subtree=\"{groups}\" by dn.exact=\"{rosterd}\" write by * none
access to * by dn.exact=\"{rosterd}\" read by * none
database monitor
",
            dir = dir.path().display(),
            tls = tls.display(),
        );
        std::fs::write(dir.path().join("slapd.conf"), config).unwrap();
        let (port, plain_port) = free_ports();
        let child = Command::new(binary)
            .args(["-d", "0", "-f"])
            .arg(dir.path().join("slapd.conf"))
            .args([
                "-h",
                &format!("ldaps://127.0.0.1:{port}/ ldap://127.0.0.1:{plain_port}/"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            flavor: Flavor::Openldap,
            child: Some(child),
            _dir: Some(dir),
            port,
            plain_port: Some(plain_port),
            _exclusive: None,
        };
        let start = Instant::now();
        let mut ldap = loop {
            match server.connect().await {
                Ok(ldap) => break ldap,
                Err(e) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "slapd did not start: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        ldap.simple_bind(admin, OPENLDAP_ADMIN_PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
        let entries: Vec<(&str, Attrs)> = vec![
            (
                suffix,
                vec![
                    ("objectClass".into(), set(&["dcObject", "organization"])),
                    ("o".into(), set(&["Example"])),
                    ("dc".into(), set(&["example"])),
                ],
            ),
            (
                "ou=services,dc=example,dc=com",
                vec![
                    ("objectClass".into(), set(&["organizationalUnit"])),
                    ("ou".into(), set(&["services"])),
                ],
            ),
            (
                rosterd,
                vec![
                    (
                        "objectClass".into(),
                        set(&["person", "simpleSecurityObject"]),
                    ),
                    ("cn".into(), set(&["rosterd"])),
                    ("sn".into(), set(&["rosterd"])),
                    ("userPassword".into(), set(&[ROSTERD_PASSWORD])),
                ],
            ),
        ];
        for (dn, attrs) in entries {
            ldap.add(dn, attrs).await.unwrap().success().unwrap();
        }
        server
    }

    /// slapd's folder (its config and database).
    pub fn dir_path(&self) -> Option<&Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    pub fn url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        certificates().join("ca.crt")
    }

    /// rosterd's client certificate and key (PEM), signed by the test CA.
    pub fn client_certificate(&self) -> (PathBuf, PathBuf) {
        (
            certificates().join("client.crt"),
            certificates().join("client.key"),
        )
    }

    fn suffix(&self) -> &'static str {
        match self.flavor {
            Flavor::Openldap => "dc=example,dc=com",
            Flavor::Samba => "DC=rosterd,DC=test",
        }
    }

    pub fn people(&self) -> String {
        match self.flavor {
            Flavor::Openldap => format!("ou=people,{}", self.suffix()),
            Flavor::Samba => format!("OU=People,{}", self.suffix()),
        }
    }

    pub fn groups_base(&self) -> String {
        match self.flavor {
            Flavor::Openldap => format!("ou=groups,{}", self.suffix()),
            Flavor::Samba => format!("OU=Groups,{}", self.suffix()),
        }
    }

    fn admin_dn(&self) -> String {
        match self.flavor {
            Flavor::Openldap => format!("cn=admin,{}", self.suffix()),
            Flavor::Samba => format!("CN=Administrator,CN=Users,{}", self.suffix()),
        }
    }

    fn admin_password(&self) -> &'static str {
        match self.flavor {
            Flavor::Openldap => OPENLDAP_ADMIN_PASSWORD,
            Flavor::Samba => ROSTERD_PASSWORD,
        }
    }

    /// The account rosterd binds as.
    pub fn bind_dn(&self) -> String {
        match self.flavor {
            Flavor::Openldap => format!("cn=rosterd,ou=services,{}", self.suffix()),
            Flavor::Samba => self.admin_dn(),
        }
    }

    /// The target's `ldap:` settings for this server.
    pub fn settings(&self) -> String {
        let flavor = match self.flavor {
            Flavor::Openldap => "",
            // Ranges of 50 values: range retrieval is exercised by every group over 50.
            Flavor::Samba => ", flavor: active_directory, range_size: 50",
        };
        format!(
            "{{ group_base: \"{}\", user_base: \"{}\", batch_size: 10{flavor} }}",
            self.groups_base(),
            self.people()
        )
    }

    /// The attribute users are matched by: `mail`, or AD's `userPrincipalName`.
    pub fn user_attribute(&self) -> &'static str {
        match self.flavor {
            Flavor::Openldap => "mail",
            Flavor::Samba => "userPrincipalName",
        }
    }

    fn group_class(&self) -> &'static str {
        match self.flavor {
            Flavor::Openldap => "groupOfNames",
            Flavor::Samba => "group",
        }
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
        ldap.simple_bind(&self.admin_dn(), self.admin_password())
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    /// The people and group bases made afresh (Samba's domain outlives a test).
    async fn reset(&self, ldap: &mut Ldap) {
        for base in [self.groups_base(), self.people()] {
            delete_subtree(ldap, &base).await;
            let (attribute, value) = base.split(',').next().unwrap().split_once('=').unwrap();
            let attrs = vec![
                (
                    "objectClass".to_string(),
                    HashSet::from(["organizationalUnit".to_string()]),
                ),
                (attribute.to_lowercase(), HashSet::from([value.to_string()])),
            ];
            ldap.add(&base, attrs).await.unwrap().success().unwrap();
        }
    }

    /// The DN of the user with this address.
    pub fn user_dn(&self, email: &str) -> String {
        let uid = email.split('@').next().unwrap().to_lowercase();
        match self.flavor {
            Flavor::Openldap => format!("uid={},{}", ldap3::dn_escape(uid.as_str()), self.people()),
            Flavor::Samba => format!("CN={},{}", ldap3::dn_escape(uid.as_str()), self.people()),
        }
    }

    /// The DN of the group `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!(
            "{}={},{}",
            if self.flavor == Flavor::Samba {
                "CN"
            } else {
                "cn"
            },
            ldap3::dn_escape(cn),
            self.groups_base()
        )
    }

    async fn add_user_on(&self, ldap: &mut Ldap, email: &str) {
        let uid = email.split('@').next().unwrap().to_lowercase();
        let one = |v: &str| HashSet::from([v.to_string()]);
        let attrs = match self.flavor {
            Flavor::Openldap => vec![
                ("objectClass".to_string(), one("inetOrgPerson")),
                ("uid".to_string(), one(&uid)),
                ("cn".to_string(), one(&uid)),
                ("sn".to_string(), one(&uid)),
                ("mail".to_string(), one(email)),
            ],
            // sAMAccountName holds 20 characters at most.
            Flavor::Samba => vec![
                ("objectClass".to_string(), one("user")),
                ("cn".to_string(), one(&uid)),
                (
                    "sAMAccountName".to_string(),
                    one(&uid.chars().take(20).collect::<String>()),
                ),
                ("userPrincipalName".to_string(), one(email)),
                ("mail".to_string(), one(email)),
            ],
        };
        ldap.add(&self.user_dn(email), attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    pub async fn add_user(&self, email: &str) {
        let mut ldap = self.admin().await;
        self.add_user_on(&mut ldap, email).await;
    }

    /// Every user under the people base: DN (lower case) → address (lower case).
    pub async fn users(&self) -> BTreeMap<String, String> {
        let mut ldap = self.admin().await;
        let filter = match self.flavor {
            Flavor::Openldap => "(objectClass=inetOrgPerson)",
            Flavor::Samba => "(objectClass=user)",
        };
        let (entries, _) = ldap
            .search(&self.people(), Scope::OneLevel, filter, vec!["mail"])
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

    /// Every group under the group base: cn → its `member` values as stored (the
    /// placeholder left out). Samba hands out every value when no range is asked.
    pub async fn groups_raw(&self) -> BTreeMap<String, Vec<String>> {
        let mut ldap = self.admin().await;
        let filter = format!("(objectClass={})", self.group_class());
        let (entries, _) = ldap
            .search(
                &self.groups_base(),
                Scope::Subtree,
                &filter,
                vec!["cn", "member"],
            )
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

    /// How many groups under the group base are named `cn`.
    pub async fn group_count(&self, cn: &str) -> usize {
        self.groups_raw()
            .await
            .keys()
            .filter(|n| n.as_str() == cn)
            .count()
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
        let mut mods = Vec::new();
        if !add.is_empty() {
            mods.push(Mod::Add(
                "member".to_string(),
                add.iter().cloned().collect(),
            ));
        }
        if !remove.is_empty() {
            mods.push(Mod::Delete(
                "member".to_string(),
                remove.iter().cloned().collect(),
            ));
        }
        ldap.modify(&self.group_dn(cn), mods)
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Renames the group `from` to `to` (`modrdn`), as an administrator would.
    pub async fn rename(&self, from: &str, to: &str) {
        let mut ldap = self.admin().await;
        let rdn = format!("cn={}", ldap3::dn_escape(to));
        ldap.modifydn(&self.group_dn(from), &rdn, true, None)
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Makes a group by hand (for a link), with these members' DNs.
    pub async fn add_group(&self, cn: &str, members: &[String]) {
        let mut ldap = self.admin().await;
        let mut values: HashSet<String> = members.iter().cloned().collect();
        if self.flavor == Flavor::Openldap {
            values.insert(String::new());
        }
        let attrs = vec![
            (
                "objectClass".to_string(),
                HashSet::from([self.group_class().to_string()]),
            ),
            ("cn".to_string(), HashSet::from([cn.to_string()])),
            ("member".to_string(), values),
        ];
        ldap.add(&self.group_dn(cn), attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Deletes every group under the group base: a directory restored without them.
    pub async fn delete_groups(&self) {
        let mut ldap = self.admin().await;
        let (entries, _) = ldap
            .search(
                &self.groups_base(),
                Scope::OneLevel,
                "(objectClass=*)",
                vec!["1.1"],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        for e in entries {
            let dn = SearchEntry::construct(e).dn;
            ldap.delete(&dn).await.unwrap().success().unwrap();
        }
    }

    /// The writes (adds, modifies, deletes, renames) slapd has completed, from its monitor
    /// (`cn=Operations,cn=Monitor`).
    pub async fn writes(&self, ldap: &mut Ldap) -> u64 {
        let (entries, _) = ldap
            .search(
                "cn=Operations,cn=Monitor",
                Scope::OneLevel,
                "(|(cn=Add)(cn=Modify)(cn=Delete)(cn=Modrdn))",
                vec!["monitorOpCompleted"],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| e.attrs["monitorOpCompleted"][0].parse::<u64>().unwrap())
            .sum()
    }
}

/// Deletes `base` and everything under it, leaves first; nothing when it is not there.
async fn delete_subtree(ldap: &mut Ldap, base: &str) {
    let Ok((entries, _)) = ldap
        .search(base, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap()
        .success()
    else {
        return;
    };
    let mut dns: Vec<String> = entries
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    // Deepest first: more RDNs, longer DN.
    dns.sort_by_key(|dn| std::cmp::Reverse((dn.matches(',').count(), dn.len())));
    for dn in dns {
        ldap.delete(&dn).await.unwrap().success().unwrap();
    }
}

/// Samba's AD DC, provisioned and started once for this test process (only its LDAP
/// service, with the test CA's certificate); its LDAPS port. It stops when the test process
/// ends: a shell beside it waits for this process to go, then stops it.
fn samba(binary: &Path) -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rosterd-test-samba-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // One left running by a test process that was killed holds the ports.
        let _ = Command::new("pkill").args(["-f", "rosterd-test-samba-"]).status();
        let tool = binary.parent().unwrap().parent().unwrap().join("bin/samba-tool");
        let tool = if tool.exists() { tool } else { PathBuf::from("samba-tool") };
        let out = Command::new(tool)
            .args(["domain", "provision", "--realm=ROSTERD.TEST", "--domain=ROSTERD", "--server-role=dc", "--dns-backend=NONE"])
            .arg(format!("--adminpass={ROSTERD_PASSWORD}"))
            .arg(format!("--targetdir={}", dir.display()))
            .args(["--option=interfaces=lo", "--option=bind interfaces only=yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "samba-tool domain provision: {}", String::from_utf8_lossy(&out.stderr));
        let conf = dir.join("etc/smb.conf");
        let tls = certificates();
        let text = std::fs::read_to_string(&conf).unwrap();
        let text = text
            .lines()
            .map(|l| if l.trim_start().starts_with("server services") { "\tserver services = ldap".to_string() } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "[global]",
                &format!("[global]\n\ttls enabled = yes\n\ttls keyfile = {t}/server.key\n\ttls certfile = {t}/server.crt\n\ttls cafile = {t}/ca.crt\n\tlog file = {d}/log.%m", t = tls.display(), d = dir.display()),
            );
        std::fs::write(&conf, text).unwrap();
        let script = format!(
            "{samba} -s {conf} --foreground --no-process-group >{dir}/samba.out 2>&1 & s=$!; while kill -0 {me} 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 0.5; done; kill $s 2>/dev/null; wait",
            samba = binary.display(),
            conf = conf.display(),
            dir = dir.display(),
            me = std::process::id(),
        );
        let mut shell = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Reaped when it ends, with this process.
        std::thread::spawn(move || shell.wait());
        let start = Instant::now();
        while std::net::TcpStream::connect("127.0.0.1:636").is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "samba did not start: see {}/samba.out", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        636
    })
}

/// Two free ports, told apart.
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}
