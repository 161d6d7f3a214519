//! The ratio to echo over a run's rounds, one line per channel, database, binary and number of
//! citizens: on these shared hosts one round says little, and the ratio moves with how many
//! citizens talk at once (`run --citizens 16,64,256`), so each load gets its own median.

use serde::Serialize;

use crate::compare::median_of_sorted;

/// One Seva run with echo in its round.
#[derive(Debug, Clone, Copy)]
pub struct RatioRun<'a> {
    pub channel: &'a str,
    pub database: &'a str,
    /// 1-based position in `--seva`.
    pub binary: usize,
    pub citizens: usize,
    /// Seva's replies/s over echo's in the same round.
    pub ratio: f64,
}

/// The rounds of one channel, database, binary and number of citizens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioSummary {
    pub channel: String,
    pub database: String,
    pub binary: usize,
    pub citizens: usize,
    pub rounds: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// One summary per channel, database, binary and number of citizens, in the order each first
/// appears in `runs`.
pub fn summarize(runs: &[RatioRun<'_>]) -> Vec<RatioSummary> {
    let mut keys: Vec<(&str, &str, usize, usize)> = Vec::new();
    for r in runs {
        let key = (r.channel, r.database, r.binary, r.citizens);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(channel, database, binary, citizens)| {
            let mut ratios: Vec<f64> = runs
                .iter()
                .filter(|r| {
                    (r.channel, r.database, r.binary, r.citizens)
                        == (channel, database, binary, citizens)
                })
                .map(|r| r.ratio)
                .collect();
            ratios.sort_by(f64::total_cmp);
            RatioSummary {
                channel: channel.to_owned(),
                database: database.to_owned(),
                binary,
                citizens,
                rounds: ratios.len(),
                median: median_of_sorted(&ratios),
                min: ratios[0],
                max: ratios[ratios.len() - 1],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(channel: &'static str, citizens: usize, ratio: f64) -> RatioRun<'static> {
        RatioRun {
            channel,
            database: "sqlite",
            binary: 1,
            citizens,
            ratio,
        }
    }

    #[test]
    fn each_load_gets_its_own_median() {
        let runs = [
            run("telegram", 64, 0.27),
            run("telegram", 256, 0.40),
            run("telegram", 64, 0.25),
            run("telegram", 256, 0.36),
            run("telegram", 64, 0.31),
        ];
        let s = summarize(&runs);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].citizens, s[0].rounds), (64, 3));
        assert_eq!((s[0].median, s[0].min, s[0].max), (0.27, 0.25, 0.31));
        assert_eq!((s[1].citizens, s[1].rounds), (256, 2));
        assert!((s[1].median - 0.38).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn channels_databases_and_binaries_are_kept_apart() {
        let runs = [
            run("whatsapp", 64, 0.30),
            run("telegram", 64, 0.20),
            RatioRun {
                database: "postgres",
                ..run("telegram", 64, 0.10)
            },
            RatioRun {
                binary: 2,
                ..run("telegram", 64, 0.25)
            },
        ];
        let s = summarize(&runs);
        let medians: Vec<(&str, &str, usize, f64)> = s
            .iter()
            .map(|s| (s.channel.as_str(), s.database.as_str(), s.binary, s.median))
            .collect();
        assert_eq!(
            medians,
            [
                ("whatsapp", "sqlite", 1, 0.30),
                ("telegram", "sqlite", 1, 0.20),
                ("telegram", "postgres", 1, 0.10),
                ("telegram", "sqlite", 2, 0.25),
            ]
        );
    }

    #[test]
    fn no_runs_no_summary() {
        assert!(summarize(&[]).is_empty());
    }
}
