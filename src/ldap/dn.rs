//! Distinguished names as rosterd compares them, and LDAP's result codes by name.

/// A DN in the one form rosterd compares and sends: each attribute type and value in lower
/// case, with no spaces around `,`, `=` and `+` (escaped characters kept as written). Two
/// DNs a directory takes for the same entry in the common case (`UID=Ann, ou=People,...`
/// and `uid=ann,ou=people,...`) read the same.
pub fn normalize(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut part = String::new();
    let mut escaped = false;
    let flush = |part: &mut String, out: &mut String| {
        out.push_str(part.trim());
        part.clear();
    };
    for c in dn.chars() {
        if escaped {
            part.extend(c.to_lowercase());
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                part.push(c);
                escaped = true;
            }
            ',' | '=' | '+' => {
                flush(&mut part, &mut out);
                out.push(c);
            }
            _ => part.extend(c.to_lowercase()),
        }
    }
    flush(&mut part, &mut out);
    out
}

/// Whether the (normalized) `dn` is `base` or an entry below it.
pub fn is_under(dn: &str, base: &str) -> bool {
    dn == base
        || dn
            .strip_suffix(base)
            .is_some_and(|head| head.ends_with(',') && !head.ends_with("\\,"))
}

/// The parent of a DN: all but its first RDN.
pub fn parent(dn: &str) -> &str {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => return &dn[i + 1..],
            _ => {}
        }
    }
    ""
}

/// An RDN of `cn` with `value`, escaped (RFC 4514).
pub fn cn(value: &str) -> String {
    format!("cn={}", ldap3::dn_escape(value))
}

/// A value in a search filter, escaped (RFC 4515).
pub fn filter_value(value: &str) -> String {
    ldap3::ldap_escape(value).into_owned()
}

/// Bytes in a search filter (an `objectGUID`), each as `\xx`.
pub fn filter_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The name RFC 4511 (appendix A) gives a result code.
pub fn result_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        _ => "unknown",
    }
}

/// What the push makes of a result code, in HTTP's words (see
/// [`crate::http::client::TargetError::Ldap`]).
pub fn class_of(rc: u32) -> u16 {
    match rc {
        32 => 404,
        68 => 409,
        7 | 48 | 49 => 401,
        8 | 13 | 50 => 403,
        3 | 11 | 51 | 52 => 503,
        1 | 80 => 500,
        _ => 400,
    }
}

/// Whether the directory asks to be tried again (busy, unavailable, out of time).
pub fn is_transient(rc: u32) -> bool {
    class_of(rc) == 503
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize("UID=Ann , ou=People,DC=Example,dc=com"),
            "uid=ann,ou=people,dc=example,dc=com"
        );
        assert_eq!(normalize("cn=a\\, b,ou=g"), "cn=a\\, b,ou=g");
        assert!(is_under("uid=a,ou=people,dc=x", "ou=people,dc=x"));
        assert!(!is_under("uid=a,ou=otherpeople,dc=x", "ou=people,dc=x"));
        assert!(!is_under("cn=x\\,ou=people,dc=x", "ou=people,dc=x"));
        assert_eq!(parent("cn=a\\,b,ou=g,dc=x"), "ou=g,dc=x");
        assert_eq!(cn("R&D, west"), "cn=R&D\\2c west");
    }
}
