//! Two or more `seva` binaries under the same load, alternated round by round (`seva-load run
//! --seva A,B`): is a change faster, or was the machine just quieter?
//!
//! On a shared machine the same binary moves by ±10 % from one run to the next, so one run of
//! each says nothing about a change of a few per cent. Each round runs every binary once, back
//! to back, in an order that turns around every round (A B, B A, …) so that a drift of the
//! machine during a round does not always favour the same one. Each candidate is compared with
//! the first binary round by round: the ratio of its replies/s to the first one's in that round.

use serde::Serialize;

/// One candidate against the first binary, on one channel and database, at one number of
/// citizens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub channel: String,
    pub database: String,
    pub citizens: usize,
    /// 1-based position in `--seva` (the first binary, the baseline, is 1).
    pub candidate: usize,
    /// Candidate's replies/s over the baseline's, one per round with both.
    pub ratios: Vec<f64>,
    pub median: f64,
    /// The geometric mean: a ratio of 1.1 and one of 1/1.1 average to 1.
    pub geometric_mean: f64,
    pub min: f64,
    pub max: f64,
    /// Rounds in which the candidate served more replies/s than the baseline.
    pub faster_rounds: usize,
}

/// One measured run, as the comparison needs it.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub channel: &'a str,
    pub database: &'a str,
    pub citizens: usize,
    pub round: usize,
    /// 1-based position in `--seva`.
    pub binary: usize,
    pub replies_per_sec: f64,
}

/// The order in which round `round` (1-based) runs `binaries` binaries: as given in odd rounds,
/// reversed in even ones.
pub fn order(round: usize, binaries: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..binaries).collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// Every candidate (binary 2, 3, …) against binary 1, per channel, database and number of
/// citizens, from the rounds in which both ran. Rounds a binary did not finish are left out of
/// its pairs.
pub fn compare(runs: &[Run<'_>]) -> Vec<Comparison> {
    let mut groups: Vec<(&str, &str, usize, usize)> = runs
        .iter()
        .filter(|r| r.binary > 1)
        .map(|r| (r.channel, r.database, r.citizens, r.binary))
        .collect();
    groups.sort();
    groups.dedup();
    groups
        .into_iter()
        .filter_map(|(channel, database, citizens, candidate)| {
            let rate = |binary: usize, round: usize| {
                runs.iter()
                    .find(|r| {
                        r.channel == channel
                            && r.database == database
                            && r.citizens == citizens
                            && r.binary == binary
                            && r.round == round
                    })
                    .map(|r| r.replies_per_sec)
            };
            let mut rounds: Vec<usize> = runs.iter().map(|r| r.round).collect();
            rounds.sort_unstable();
            rounds.dedup();
            let ratios: Vec<f64> = rounds
                .into_iter()
                .filter_map(|round| match (rate(1, round), rate(candidate, round)) {
                    (Some(base), Some(cand)) if base > 0.0 => Some(cand / base),
                    _ => None,
                })
                .collect();
            summarize(ratios).map(|s| Comparison {
                channel: channel.to_owned(),
                database: database.to_owned(),
                citizens,
                candidate,
                ..s
            })
        })
        .collect()
}

fn summarize(ratios: Vec<f64>) -> Option<Comparison> {
    if ratios.is_empty() {
        return None;
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = median_of_sorted(&sorted);
    let geometric_mean = (sorted.iter().map(|r| r.ln()).sum::<f64>() / n as f64).exp();
    Some(Comparison {
        channel: String::new(),
        database: String::new(),
        citizens: 0,
        candidate: 0,
        faster_rounds: ratios.iter().filter(|&&r| r > 1.0).count(),
        min: sorted[0],
        max: sorted[n - 1],
        median,
        geometric_mean,
        ratios,
    })
}

/// The middle value of a sorted, non-empty slice (the mean of the two middle ones when even).
pub fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(channel: &'static str, round: usize, binary: usize, rate: f64) -> Run<'static> {
        Run {
            channel,
            database: "sqlite",
            citizens: 64,
            round,
            binary,
            replies_per_sec: rate,
        }
    }

    #[test]
    fn order_turns_around_every_round() {
        assert_eq!(order(1, 2), vec![0, 1]);
        assert_eq!(order(2, 2), vec![1, 0]);
        assert_eq!(order(3, 3), vec![0, 1, 2]);
        assert_eq!(order(4, 3), vec![2, 1, 0]);
    }

    #[test]
    fn candidates_are_paired_with_the_baseline_of_the_same_round() {
        // The machine got faster in round 2; the candidate is 10 % faster in both rounds.
        let runs = [
            run("telegram", 1, 1, 1000.0),
            run("telegram", 1, 2, 1100.0),
            run("telegram", 2, 2, 2200.0),
            run("telegram", 2, 1, 2000.0),
        ];
        let c = compare(&runs);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].candidate, 2);
        assert_eq!(c[0].channel, "telegram");
        assert_eq!(c[0].ratios.len(), 2);
        assert!((c[0].median - 1.1).abs() < 1e-9, "{c:?}");
        assert!((c[0].geometric_mean - 1.1).abs() < 1e-9, "{c:?}");
        assert_eq!(c[0].faster_rounds, 2);
    }

    #[test]
    fn a_win_and_an_equal_loss_average_to_even() {
        let runs = [
            run("whatsapp", 1, 1, 1000.0),
            run("whatsapp", 1, 2, 1250.0),
            run("whatsapp", 2, 1, 1250.0),
            run("whatsapp", 2, 2, 1000.0),
        ];
        let c = compare(&runs);
        assert!((c[0].geometric_mean - 1.0).abs() < 1e-9, "{c:?}");
        assert!((c[0].median - 1.025).abs() < 1e-9, "{c:?}");
        assert_eq!((c[0].min, c[0].max), (0.8, 1.25));
        assert_eq!(c[0].faster_rounds, 1);
    }

    #[test]
    fn channels_and_candidates_are_compared_apart_and_unpaired_rounds_are_left_out() {
        let runs = [
            run("whatsapp", 1, 1, 1000.0),
            run("whatsapp", 1, 2, 900.0),
            run("whatsapp", 1, 3, 1200.0),
            run("telegram", 1, 1, 1000.0),
            run("telegram", 1, 2, 1050.0),
            // Round 2 of telegram lost its baseline run.
            run("telegram", 2, 2, 5000.0),
        ];
        let c = compare(&runs);
        let find = |ch: &str, cand: usize| {
            c.iter()
                .find(|x| x.channel == ch && x.candidate == cand)
                .unwrap()
        };
        assert_eq!(c.len(), 3);
        assert_eq!(find("whatsapp", 2).ratios, vec![0.9]);
        assert_eq!(find("whatsapp", 3).ratios, vec![1.2]);
        assert_eq!(find("telegram", 2).ratios, vec![1.05]);
    }

    #[test]
    fn rounds_at_different_numbers_of_citizens_are_not_paired() {
        // Round 1 ran at 16 and at 256 citizens; only runs at the same load are compared.
        let at = |citizens, binary, rate| Run {
            citizens,
            ..run("telegram", 1, binary, rate)
        };
        let runs = [
            at(16, 1, 500.0),
            at(16, 2, 550.0),
            at(256, 1, 1000.0),
            at(256, 2, 900.0),
        ];
        let c = compare(&runs);
        let by = |citizens: usize| c.iter().find(|x| x.citizens == citizens).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(by(16).ratios, vec![1.1]);
        assert_eq!(by(256).ratios, vec![0.9]);
    }

    #[test]
    fn one_binary_compares_nothing() {
        assert!(compare(&[run("telegram", 1, 1, 1000.0)]).is_empty());
    }
}
