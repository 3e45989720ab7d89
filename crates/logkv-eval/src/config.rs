//! The run configurations: `smoke` (seconds, for CI) and `full` (the
//! documented evaluation, tens of minutes on a 2-core machine).

use serde::{Deserialize, Serialize};

use crate::record::DataSet;
use crate::run::{Phase, Workload};
use crate::workload::Distribution;

/// Which configuration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigName {
    /// Tiny data sets and fractions of a second per phase: proves the
    /// harness works end to end.
    Smoke,
    /// The data sets of the evaluation.
    Full,
}

/// One data set and what runs on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataPlan {
    /// Keys and value size.
    pub data: DataSet,
    /// Timed phases, in order, after the preload.
    pub phases: Vec<Phase>,
    /// Seconds of the time-to-persist measure on this data set, if any.
    pub persist_secs: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// `smoke` or `full`.
    pub name: String,
    /// The data sets, in order.
    pub plans: Vec<DataPlan>,
    /// Seconds per timed phase.
    pub phase_secs: f64,
    /// `kill -9` trials per engine.
    pub kill_trials: u32,
    /// Simulated power losses per engine (logkv's modes and the baseline).
    pub power_trials: u32,
    /// Seed of every random choice.
    pub seed: u64,
}

fn phases(list: &[(Workload, Distribution, &[u32])]) -> Vec<Phase> {
    list.iter()
        .flat_map(|&(workload, distribution, threads)| {
            threads.iter().map(move |&threads| Phase { workload, distribution, threads })
        })
        .collect()
}

use Distribution::{Uniform, Zipfian};
use Workload::*;

impl Config {
    /// The configuration called `name`.
    pub fn named(name: ConfigName) -> Self {
        match name {
            ConfigName::Smoke => Self::smoke(),
            ConfigName::Full => Self::full(),
        }
    }

    fn smoke() -> Self {
        let all = phases(&[
            (LoadSeq, Uniform, &[1]),
            (LoadRandom, Uniform, &[1, 4]),
            (ReadRandom, Uniform, &[1, 4]),
            (ReadRandom, Zipfian, &[4]),
            (Update50, Uniform, &[4]),
            (Read95, Uniform, &[4]),
            (Rmw, Uniform, &[4]),
            (Scan, Uniform, &[4]),
        ]);
        let large = phases(&[(LoadRandom, Uniform, &[1]), (ReadRandom, Uniform, &[4])]);
        Self {
            name: "smoke".into(),
            plans: vec![
                DataPlan {
                    data: DataSet { keys: 20_000, value_bytes: 100 },
                    phases: all,
                    persist_secs: Some(0.3),
                },
                DataPlan {
                    data: DataSet { keys: 50, value_bytes: 1 << 20 },
                    phases: large,
                    persist_secs: None,
                },
            ],
            phase_secs: 0.1,
            kill_trials: 2,
            power_trials: 2,
            seed: 42,
        }
    }

    fn full() -> Self {
        let all = phases(&[
            (LoadSeq, Uniform, &[1, 32]),
            (LoadRandom, Uniform, &[1, 2, 4, 32]),
            (ReadRandom, Uniform, &[1, 2, 4, 32]),
            (ReadRandom, Zipfian, &[4]),
            (Update50, Uniform, &[1, 4, 32]),
            (Update50, Zipfian, &[4]),
            (Read95, Uniform, &[4]),
            (Rmw, Uniform, &[4]),
            (Scan, Uniform, &[4]),
        ]);
        let small = phases(&[
            (LoadRandom, Uniform, &[1, 32]),
            (ReadRandom, Uniform, &[4]),
            (Update50, Uniform, &[4]),
        ]);
        let large = phases(&[(LoadRandom, Uniform, &[1, 4]), (ReadRandom, Uniform, &[4])]);
        let plan = |keys, value_bytes, phases: &Vec<Phase>, persist_secs| DataPlan {
            data: DataSet { keys, value_bytes },
            phases: phases.clone(),
            persist_secs,
        };
        Self {
            name: "full".into(),
            plans: vec![
                plan(1_000_000, 100, &small, Some(5.0)),
                plan(10_000_000, 100, &all, None),
                plan(1_000_000, 4096, &large, None),
                plan(50_000, 64 << 10, &large, None),
                plan(2_000, 1 << 20, &large, None),
            ],
            phase_secs: 1.0,
            kill_trials: 20,
            power_trials: 20,
            seed: 42,
        }
    }
}
