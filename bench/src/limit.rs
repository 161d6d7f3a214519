//! Which side of a run was saturated: the target, the load tool, both or neither.
//!
//! Echo is meant to be the ceiling of this machine for the traffic. If the load tool used up
//! its core while echo still had room, the run measured the load tool instead, echo's figure
//! is low, and every Seva ratio of that round is too high. A run whose target was not
//! saturated either was waiting (for PostgreSQL, for the network).

use serde::Serialize;

/// Busy share of a core above which a side counts as saturated: pinned processes under a
/// closed loop sit at 0.93–0.99 when they are the bottleneck, and well below it otherwise.
const SATURATED: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Target,
    LoadTool,
    Both,
    Neither,
}

impl Limit {
    /// From the CPU each side used in the window, in cores. An unknown reading (NaN, when
    /// `/proc` could not be read) is not counted as saturated.
    pub fn of(target_cpu: f64, load_cpu: f64) -> Limit {
        match (target_cpu >= SATURATED, load_cpu >= SATURATED) {
            (true, true) => Limit::Both,
            (true, false) => Limit::Target,
            (false, true) => Limit::LoadTool,
            (false, false) => Limit::Neither,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Target => "target",
            Limit::LoadTool => "load tool",
            Limit::Both => "both",
            Limit::Neither => "neither",
        }
    }

    /// Whether an echo run with this limit measured echo's ceiling: echo's own core was full.
    pub fn reached_ceiling(self) -> bool {
        matches!(self, Limit::Target | Limit::Both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_load_tool_beside_an_idle_echo_is_the_limit() {
        assert_eq!(Limit::of(0.62, 0.98), Limit::LoadTool);
        assert!(!Limit::of(0.62, 0.98).reached_ceiling());
    }

    #[test]
    fn a_full_target_core_is_its_ceiling_whatever_the_load_tool_did() {
        assert_eq!(Limit::of(0.97, 0.45), Limit::Target);
        assert_eq!(Limit::of(0.95, 0.97), Limit::Both);
        assert!(Limit::of(0.97, 0.45).reached_ceiling());
        assert!(Limit::of(0.95, 0.97).reached_ceiling());
    }

    #[test]
    fn a_target_waiting_on_its_database_is_limited_by_neither() {
        assert_eq!(Limit::of(0.47, 0.22), Limit::Neither);
    }

    #[test]
    fn an_unknown_reading_is_not_saturation() {
        assert_eq!(Limit::of(f64::NAN, f64::NAN), Limit::Neither);
        assert_eq!(Limit::of(f64::NAN, 0.99), Limit::LoadTool);
    }
}
