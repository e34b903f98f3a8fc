//! Which characters user-written text may hold. Control characters and the
//! bidirectional embeddings, overrides and isolates are refused: they make
//! text display other than it reads (`\u{202e}` turns "exe.txt" around) and
//! mean nothing in a name or a task. Zero-width joiners stay (emoji
//! sequences need them). The ranges are written once, here: parsing uses
//! them, and the API description renders them as its patterns.

/// Refused in a one-line text (a task title, a full name), anywhere, padding
/// included: C0 and C1 controls, DEL, U+202A–U+202E, U+2066–U+2069, and
/// U+FEFF (a byte-order mark, invisible). Without these, Rust's whitespace
/// and ECMA-262's `\s` are the same set, so "blank" means one thing to the
/// server and to a client's validator.
pub const LINE_REFUSED: &[(char, char)] = &[
    ('\u{0}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2066}', '\u{2069}'),
    ('\u{feff}', '\u{feff}'),
];

/// Refused in a multi-line text (a task description): the same controls but
/// tab, line feed and carriage return, and the bidirectional ones.
pub const TEXT_REFUSED: &[(char, char)] = &[
    ('\u{0}', '\u{8}'),
    ('\u{b}', '\u{c}'),
    ('\u{e}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2066}', '\u{2069}'),
];

/// `Err` naming the field and the first refused character, if any.
pub fn check_characters(field: &str, text: &str, refused: &[(char, char)]) -> Result<(), String> {
    match text
        .chars()
        .find(|c| refused.iter().any(|(lo, hi)| (lo..=hi).contains(&c)))
    {
        Some(c) => Err(format!(
            "{field} must not contain control or bidirectional formatting characters (U+{:04X})",
            c as u32
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_formatting_are_refused_and_emoji_sequences_are_not() {
        for bad in [
            "a\u{202e}b",
            "\u{2066}x",
            "a\u{7}",
            "\u{85}",
            "x\u{feff}",
            "a\tb",
        ] {
            assert!(check_characters("t", bad, LINE_REFUSED).is_err(), "{bad:?}");
        }
        // A family: four people joined by U+200D.
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert!(check_characters("t", family, LINE_REFUSED).is_ok());
        assert!(check_characters("t", "مرحبا \u{200f}world", LINE_REFUSED).is_ok());
        assert!(check_characters("d", "line one\r\n\tline two", TEXT_REFUSED).is_ok());
        for bad in ["a\u{0}", "\u{1b}[31m", "\u{202d}", "\u{c}"] {
            assert!(check_characters("d", bad, TEXT_REFUSED).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_characters("title", "a\u{202e}", LINE_REFUSED).unwrap_err(),
            "title must not contain control or bidirectional formatting characters (U+202E)"
        );
    }
}
