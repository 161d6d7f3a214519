//! The citizen journeys the load replays: a theft complaint (first contact, language choice),
//! a lost item and a status check of the complaint's reference. Typed English text only, so
//! the same script works on WhatsApp and Telegram (numbers and words are understood the same
//! way as taps).

/// Where the status check types the reference the complaint journey received.
pub const REFERENCE: &str = "{ref}";

/// A stand-in reference for targets that file nothing (the echo gateway).
pub const PLACEHOLDER_REFERENCE: &str = "C-7K3Q-9XM4-R";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Complaint,
    Lost,
    Status,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Complaint => "complaint",
            Kind::Lost => "lost item",
            Kind::Status => "status check",
        }
    }
}

/// One journey: what the citizen types, in order; `replies[i]` is how many messages Seva sends
/// in answer to `steps[i]` (learnt by calibration; 1 for the echo gateway).
#[derive(Debug, Clone)]
pub struct Journey {
    pub kind: Kind,
    pub steps: Vec<&'static str>,
    pub replies: Vec<usize>,
}

/// One cycle of a virtual citizen: complaint, lost item, status check.
pub fn cycle() -> Vec<Journey> {
    let journey = |kind, steps: Vec<&'static str>| Journey {
        kind,
        replies: vec![1; steps.len()],
        steps,
    };
    vec![
        journey(
            Kind::Complaint,
            vec![
                "hello",
                "english",
                "1",
                "theft",
                "My bicycle was stolen from the market in the afternoon.",
                "yesterday",
                "Near Gandhi Maidan, Patna",
                "kotwali",
                "Ramesh Kumar",
                "9876543210",
                "done",
                "yes",
                "1",
            ],
        ),
        journey(
            Kind::Lost,
            vec![
                "2",
                "bag",
                "Red school bag with books",
                "today",
                "Kankarbagh market",
                "2",
                "Ravi Kumar",
                "9123456789",
                "1",
            ],
        ),
        journey(Kind::Status, vec!["status", REFERENCE]),
    ]
}

/// The first report reference (`C-7K3Q-9XM4-R`, `L-…`) in `text`.
pub fn find_reference(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let alnum = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    (0..chars.len().saturating_sub(12)).find_map(|i| {
        let w = &chars[i..i + 13];
        let shape = w[0].is_ascii_uppercase()
            && w[1] == '-'
            && w[2..6].iter().all(|c| alnum(*c))
            && w[6] == '-'
            && w[7..11].iter().all(|c| alnum(*c))
            && w[11] == '-'
            && alnum(w[12]);
        let bounded = i == 0 || !chars[i - 1].is_alphanumeric();
        (shape && bounded).then(|| w.iter().collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_replies() {
        assert_eq!(
            find_reference("Reference number: L-7K3B-9XM1-T\nKotwali has been informed.")
                .as_deref(),
            Some("L-7K3B-9XM1-T")
        );
        assert_eq!(find_reference("no reference here, C-12"), None);
    }

    #[test]
    fn the_status_check_types_the_reference() {
        let cycle = cycle();
        assert_eq!(cycle.len(), 3);
        assert_eq!(cycle[2].steps.last(), Some(&REFERENCE));
        assert!(cycle.iter().all(|j| j.replies.len() == j.steps.len()));
    }
}
