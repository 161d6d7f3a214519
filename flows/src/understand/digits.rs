/// `०`-`९` → `'0'`-`'9'`; ASCII digits as themselves; anything else `None`.
pub fn ascii_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '०'..='९' => char::from_digit(c as u32 - '०' as u32, 10),
        _ => None,
    }
}

/// The text with every Devanagari digit replaced by its ASCII digit.
pub fn normalize_digits(s: &str) -> String {
    s.chars().map(|c| ascii_digit(c).unwrap_or(c)).collect()
}

/// A whole-message small number ("2", "२", " 3. ") as a 1-based option number.
pub fn option_number(s: &str) -> Option<usize> {
    let t = normalize_digits(s.trim());
    let t = t.trim_end_matches(['.', ')']);
    if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}
