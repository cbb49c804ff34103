//! What an LDAP or Active Directory target needs besides the URL and the credentials.

use serde::Deserialize;

/// Where a directory keeps the groups and the users, and how it names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// Which server's names and habits: `openldap` (the default) or `active_directory`.
    #[serde(default)]
    pub flavor: LdapFlavor,
    /// Where rosterd makes its groups, and looks for them (the subtree).
    pub group_base: String,
    /// Where the users are looked for (the subtree): a member outside it is not a user
    /// rosterd manages, and is kept (reported, never removed).
    pub user_base: String,
    /// Which entries under `user_base` are users. Default: `(objectClass=inetOrgPerson)`;
    /// Active Directory's `(&(objectCategory=person)(objectClass=user))`.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// The groups' object class: `group_of_names` (the default; members in `member`),
    /// `group_of_unique_names` (members in `uniqueMember`) or `group` (Active Directory's,
    /// the default there).
    #[serde(default)]
    pub group_class: Option<GroupClass>,
    /// Upgrade an `ldap://` connection with StartTLS (the certificate checked as for
    /// `ldaps://`).
    #[serde(default)]
    pub starttls: bool,
    /// Allow plain `ldap://` without StartTLS to a host that is not this machine: the bind
    /// password then crosses the network in the clear. Named explicitly, never the default.
    #[serde(default)]
    pub plain: bool,
    /// Member values added or deleted in one modify request.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Active Directory: member values read a request (range retrieval,
    /// `member;range=0-1499`). Default 1,500, AD's `MaxValRange`.
    #[serde(default)]
    pub range_size: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LdapFlavor {
    #[default]
    Openldap,
    ActiveDirectory,
}

/// The object class of the groups rosterd makes and finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupClass {
    GroupOfNames,
    GroupOfUniqueNames,
    Group,
}

impl GroupClass {
    /// As the directory's schema names it.
    pub fn object_class(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "groupOfNames",
            GroupClass::GroupOfUniqueNames => "groupOfUniqueNames",
            GroupClass::Group => "group",
        }
    }

    /// The attribute that holds the members' DNs.
    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupClass::GroupOfUniqueNames => "uniqueMember",
            GroupClass::GroupOfNames | GroupClass::Group => "member",
        }
    }

    /// Whether the class needs at least one member (`groupOfNames` and
    /// `groupOfUniqueNames` do): such a group keeps the empty DN as a placeholder.
    pub fn needs_a_member(self) -> bool {
        self != GroupClass::Group
    }
}

fn default_batch_size() -> usize {
    500
}

impl LdapSettings {
    pub fn group_class(&self) -> GroupClass {
        self.group_class.unwrap_or(match self.flavor {
            LdapFlavor::Openldap => GroupClass::GroupOfNames,
            LdapFlavor::ActiveDirectory => GroupClass::Group,
        })
    }

    pub fn user_filter(&self) -> &str {
        self.user_filter.as_deref().unwrap_or(match self.flavor {
            LdapFlavor::Openldap => "(objectClass=inetOrgPerson)",
            LdapFlavor::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
        })
    }

    /// The operational attribute that names an entry for good, through renames.
    pub fn id_attribute(&self) -> &'static str {
        match self.flavor {
            LdapFlavor::Openldap => "entryUUID",
            LdapFlavor::ActiveDirectory => "objectGUID",
        }
    }

    /// Member values read a request, for Active Directory's range retrieval; `None` for a
    /// directory that hands out every value at once.
    pub fn range_size(&self) -> Option<usize> {
        match self.flavor {
            LdapFlavor::Openldap => None,
            LdapFlavor::ActiveDirectory => Some(self.range_size.unwrap_or(1_500)),
        }
    }

    /// `Err` starts with the field's name, for `targets.NAME.` to be put in front.
    pub(super) fn validate(&self) -> Result<(), String> {
        for (field, dn) in [
            ("ldap.group_base", &self.group_base),
            ("ldap.user_base", &self.user_base),
        ] {
            if !looks_like_a_dn(dn) {
                return Err(format!(
                    "{field}: `{dn}` is not a DN such as `ou=groups,dc=example,dc=com`"
                ));
            }
        }
        if let Some(filter) = &self.user_filter {
            let depth = filter.chars().try_fold(0i32, |depth, c| {
                let depth = depth + i32::from(c == '(') - i32::from(c == ')');
                (depth >= 0).then_some(depth)
            });
            if !filter.starts_with('(') || depth != Some(0) {
                return Err(format!(
                    "ldap.user_filter: `{filter}` is not an LDAP filter such as `(objectClass=inetOrgPerson)`"
                ));
            }
        }
        if self.flavor == LdapFlavor::ActiveDirectory
            && self.group_class.is_some_and(|c| c != GroupClass::Group)
        {
            return Err("ldap.group_class: Active Directory's groups are of class `group`".into());
        }
        if let Some(size) = self.range_size {
            if self.flavor != LdapFlavor::ActiveDirectory {
                return Err("ldap.range_size: only Active Directory (`flavor: active_directory`) reads members in ranges".into());
            }
            super::in_range("ldap.range_size", size, 1..=1_000_000)?;
        }
        super::in_range("ldap.batch_size", self.batch_size, 1..=5_000)
    }
}

/// Whether `text` reads as a DN: comma-separated `attribute=value` parts.
fn looks_like_a_dn(text: &str) -> bool {
    !text.trim().is_empty()
        && text.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(a, v)| !a.trim().is_empty() && !v.trim().is_empty())
        })
}

/// An attribute's name as LDAP writes it (RFC 4512 `descr`): a letter, then letters,
/// digits and hyphens.
pub fn is_attribute_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `ldaps://host`, `ldap://` to this machine, or `ldap://` elsewhere only with StartTLS or
/// `plain: true`: `Err` says which.
pub(crate) fn check_ldap_url(url: &str, settings: Option<&LdapSettings>) -> Result<(), String> {
    let shown = crate::secret::shown_url(url);
    let parsed = url::Url::parse(url).map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let starttls = settings.is_some_and(|s| s.starttls);
    let plain = settings.is_some_and(|s| s.plain);
    match parsed.scheme() {
        _ if parsed.host().is_none() => Err(format!("`{shown}` names no host")),
        "ldaps" if starttls => Err(format!(
            "`{shown}` is ldaps already\nhelp: `ldap.starttls` upgrades an `ldap://` connection"
        )),
        "ldaps" => Ok(()),
        "ldap" if loopback || starttls || plain => Ok(()),
        "ldap" => Err(format!(
            "`{shown}` is plain LDAP\nhelp: use `ldaps://`, or set `ldap.starttls: true`; plain LDAP to another host needs `ldap.plain: true`"
        )),
        _ => Err(format!("`{shown}` is not an ldap:// or ldaps:// URL")),
    }
}
