//! Report references, `K-XXXX-XXXX-X` (spec §3): a kind letter, eight random Crockford base-32
//! characters (40 bits) and a Damm check character over GF(32) with modulus x⁵+x²+1.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub(crate) const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The three kinds of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Complaint,
    Lost,
    Found,
}

impl ReportKind {
    pub const ALL: [ReportKind; 3] = [ReportKind::Complaint, ReportKind::Lost, ReportKind::Found];

    pub fn letter(self) -> char {
        match self {
            ReportKind::Complaint => 'C',
            ReportKind::Lost => 'L',
            ReportKind::Found => 'F',
        }
    }

    pub fn from_letter(c: char) -> Option<ReportKind> {
        match c {
            'C' => Some(ReportKind::Complaint),
            'L' => Some(ReportKind::Lost),
            'F' => Some(ReportKind::Found),
            _ => None,
        }
    }

    /// The kind's value in the check computation (C=1, L=2, F=3).
    fn value(self) -> u8 {
        match self {
            ReportKind::Complaint => 1,
            ReportKind::Lost => 2,
            ReportKind::Found => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Complaint => "complaint",
            ReportKind::Lost => "lost",
            ReportKind::Found => "found",
        }
    }

    pub fn parse(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A valid reference. Stored and shown as `K-XXXX-XXXX-X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reference {
    kind: ReportKind,
    /// Alphabet positions (0..32) of the eight random characters.
    body: [u8; 8],
}

/// Why a typed reference was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceError {
    /// Not shaped like a reference at all.
    Malformed,
    /// Shaped like one, but the check character is wrong: a typo.
    Typo,
}

/// α·x in GF(32) modulo x⁵+x²+1.
fn times_alpha(x: u8) -> u8 {
    let shifted = x << 1;
    if shifted & 0b10_0000 != 0 {
        shifted ^ 0b10_0101
    } else {
        shifted
    }
}

fn damm(values: impl IntoIterator<Item = u8>) -> u8 {
    values.into_iter().fold(0, |i, v| times_alpha(i ^ v))
}

impl Reference {
    /// A reference from eight random values; each is reduced to 0..32 (5 bits each, 40 bits).
    pub fn generate(kind: ReportKind, random: [u8; 8]) -> Reference {
        Reference {
            kind,
            body: random.map(|b| b & 0x1f),
        }
    }

    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    fn check(&self) -> u8 {
        damm(std::iter::once(self.kind.value()).chain(self.body))
    }

    /// Reads a reference the way citizens type it: any case, with or without dashes (of any
    /// kind) or spaces, invisible zero-width characters ignored, Devanagari digits, and I/L
    /// read as 1, O as 0 after the kind letter. Look-alike letters of other scripts (a Cyrillic
    /// `С`) are not Latin letters: such a reference is malformed.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut chars = input
            .chars()
            .filter(|c| {
                !c.is_whitespace()
                    && !crate::understand::words::is_zero_width(*c)
                    && !matches!(
                        c,
                        '-' | '–' | '—' | '‐' | '‑' | '−' | '－' | '_' | '.' | '/'
                    )
            })
            .map(|c| {
                crate::understand::digits::ascii_digit(c)
                    .unwrap_or(c)
                    .to_ascii_uppercase()
            });
        let kind = chars
            .next()
            .and_then(ReportKind::from_letter)
            .ok_or(ReferenceError::Malformed)?;
        let mut values = Vec::with_capacity(9);
        for c in chars {
            let c = match c {
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            let pos = ALPHABET
                .iter()
                .position(|&a| a as char == c)
                .ok_or(ReferenceError::Malformed)?;
            values.push(pos as u8);
        }
        if values.len() != 9 {
            return Err(ReferenceError::Malformed);
        }
        if damm(std::iter::once(kind.value()).chain(values.iter().copied())) != 0 {
            return Err(ReferenceError::Typo);
        }
        let mut body = [0u8; 8];
        body.copy_from_slice(&values[..8]);
        Ok(Reference { kind, body })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |v: u8| ALPHABET[v as usize] as char;
        let b = &self.body;
        write!(
            f,
            "{}-{}{}{}{}-{}{}{}{}-{}",
            self.kind.letter(),
            c(b[0]),
            c(b[1]),
            c(b[2]),
            c(b[3]),
            c(b[4]),
            c(b[5]),
            c(b[6]),
            c(b[7]),
            c(self.check())
        )
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(|_| serde::de::Error::custom("invalid reference"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vectors_are_valid_and_round_trip() {
        for s in ["C-7K3Q-9XM4-R", "L-7K3Q-9XM4-K", "F-7K3Q-9XM4-9"] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn generated_reference_carries_the_spec_check_character() {
        let body = "7K3Q9XM4"
            .bytes()
            .map(|b| ALPHABET.iter().position(|&a| a == b).unwrap() as u8);
        let body: [u8; 8] = body.collect::<Vec<_>>().try_into().unwrap();
        assert_eq!(
            Reference::generate(ReportKind::Complaint, body).to_string(),
            "C-7K3Q-9XM4-R"
        );
    }

    #[test]
    fn tolerant_reading() {
        let want = Reference::parse("C-7K3Q-9XM4-R").unwrap();
        for typed in [
            "c7k3q9xm4r",
            "C 7K3Q 9XM4 R",
            " c-7k3q-9xm4-r ",
            "C-7K3Q-९XM४-R",
            "C–7K3Q—9XM4-R",
        ] {
            assert_eq!(Reference::parse(typed), Ok(want), "{typed}");
        }
        // I and L read as 1, O as 0, after the kind letter.
        let with_one = Reference::generate(ReportKind::Lost, [1, 0, 1, 0, 1, 0, 1, 0]).to_string();
        let typed = with_one[1..].replace('1', "I").replace('0', "O");
        assert_eq!(
            Reference::parse(&format!("L{typed}")).unwrap().to_string(),
            with_one
        );
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let good = "C7K3Q9XM4R";
        for pos in 0..good.len() {
            for &sub in ALPHABET.iter().chain(b"LF") {
                let mut s: Vec<u8> = good.bytes().collect();
                if s[pos] == sub {
                    continue;
                }
                s[pos] = sub;
                let s = String::from_utf8(s).unwrap();
                assert!(Reference::parse(&s).is_err(), "{s} accepted");
            }
        }
    }

    #[test]
    fn every_adjacent_swap_is_caught() {
        for seed in 0u8..64 {
            let body = [
                seed,
                seed.wrapping_mul(7),
                31,
                0,
                seed ^ 5,
                17,
                seed % 32,
                3,
            ];
            let r = Reference::generate(ReportKind::Found, body)
                .to_string()
                .replace('-', "");
            let chars: Vec<char> = r.chars().collect();
            for i in 1..chars.len() - 1 {
                if chars[i] == chars[i + 1] {
                    continue;
                }
                let mut s = chars.clone();
                s.swap(i, i + 1);
                let s: String = s.into_iter().collect();
                assert!(Reference::parse(&s).is_err(), "{s} accepted (from {r})");
            }
        }
    }

    #[test]
    fn zero_width_characters_and_unicode_dashes_are_ignored() {
        let r = Reference::parse("C-7K3Q-9XM4-R").unwrap();
        for typed in [
            "C\u{200B}-7K3Q-9XM4-R\u{FEFF}",
            "C‐7K3Q‑9XM4−R",
            "C－7K3Q－9XM4－R",
        ] {
            assert_eq!(Reference::parse(typed), Ok(r), "{typed:?}");
        }
    }

    #[test]
    fn wrong_check_is_a_typo_and_garbage_is_malformed() {
        assert_eq!(Reference::parse("C-7K3Q-9XM4-S"), Err(ReferenceError::Typo));
        assert_eq!(
            Reference::parse("X-7K3Q-9XM4-R"),
            Err(ReferenceError::Malformed)
        );
        assert_eq!(Reference::parse("C-7K3Q"), Err(ReferenceError::Malformed));
        assert_eq!(
            Reference::parse("С-7K3Q-9XM4-R"),
            Err(ReferenceError::Malformed)
        ); // Cyrillic С
        assert_eq!(Reference::parse(""), Err(ReferenceError::Malformed));
    }
}
