//! Text as messages quote it.

/// `text` cut to at most `max` characters, marked with `…` where cut: messages quote what
/// they complain about, and what they complain about can be megabytes long.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(super::shorten("héllo", 2), "hé…");
        assert_eq!(super::shorten("héllo", 5), "héllo");
    }
}
