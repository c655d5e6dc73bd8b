//! Defaults built into the binary, so `switchboard` runs from any directory: the rate table
//! seed and the recorded calls the sandbox's STT simulator recognizes. Flags point elsewhere.

use anyhow::Context;
use std::path::Path;

/// The rate table seed (`assets/rates.csv`).
const RATES_CSV: &str = include_str!("../assets/rates.csv");

/// The recorded calls: name, WAV, sidecar.
const CALLS: &[(&str, &[u8], &str)] = &[
    ("simple", include_bytes!("../assets/calls/simple.wav"), include_str!("../assets/calls/simple.json")),
    ("multi_turn", include_bytes!("../assets/calls/multi_turn.wav"), include_str!("../assets/calls/multi_turn.json")),
    ("barge_in", include_bytes!("../assets/calls/barge_in.wav"), include_str!("../assets/calls/barge_in.json")),
    ("tools", include_bytes!("../assets/calls/tools.wav"), include_str!("../assets/calls/tools.json")),
    ("tools_line", include_bytes!("../assets/calls/tools_line.wav"), include_str!("../assets/calls/tools_line.json")),
];

/// The rate table seed: `path`'s, or the built-in one; parsed, with where it came from.
pub fn rates(path: Option<&Path>) -> anyhow::Result<(billing::RateTable, String)> {
    let (text, from) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading the rate table {}", p.display()))?;
            (text, p.display().to_string())
        }
        None => (RATES_CSV.to_string(), "the built-in rate table".to_string()),
    };
    let table = billing::RateTable::from_csv(&text).with_context(|| format!("parsing {from}"))?;
    Ok((table, from))
}

/// The recorded-call catalog: `dir`'s WAVs and sidecars, or the built-in calls.
pub fn catalog(dir: Option<&Path>) -> anyhow::Result<stt_sim::Catalog> {
    match dir {
        Some(d) => stt_sim::Catalog::from_dir(d)
            .with_context(|| format!("loading the recorded-call catalog from {}", d.display())),
        None => stt_sim::Catalog::from_recordings(CALLS).context("loading the built-in recorded calls"),
    }
}
