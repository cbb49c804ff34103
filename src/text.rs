//! Text as messages quote it, and the states kept as text.

/// Declares an enum kept as text: `as_str`, `parse` (an unknown text is a decode error that
/// names the kind), `Display`, and `Serialize` as that text.
macro_rules! stored_text {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            pub fn parse(s: &str) -> Result<Self, sqlx::Error> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(sqlx::Error::Decode(
                        format!(concat!("unknown ", $what, " `{}`"), other).into(),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use stored_text;

/// `text` cut to at most `max` characters, marked with `…` where cut: messages quote what
/// they complain about, and what they complain about can be megabytes long.
pub fn shorten(text: &str, max: usize) -> String {
    let kept = prefix(text, max);
    if kept.len() == text.len() {
        kept.to_string()
    } else {
        format!("{kept}…")
    }
}

/// The first `max` characters of `text` (all of it when shorter).
pub fn prefix(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(at, _)| &text[..at])
}

/// `n` and the noun, plural unless `n` is 1: "1 join", "3 joins".
pub fn count(n: u64, noun: &str) -> String {
    count_as(n, noun, &format!("{noun}s"))
}

/// As [`count`], for a noun whose plural is not `-s`: "1 retry", "2 retries".
pub fn count_as(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// An error and its causes, as one line: `outer: inner: innermost`.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(super::shorten("héllo", 2), "hé…");
        assert_eq!(super::shorten("héllo", 5), "héllo");
    }
}
