//! The committed fuzz seeds (`fuzz/seeds/<target>/`) are real conversations: each one that is
//! not an error case decodes to something through its crate's fuzz entry point, so fuzzing
//! starts past the parsers' first checks, and every decoder arm has a seed.

/// A wire fuzz target: its seed folder, its decoder arms, and its entry point.
struct WireTarget {
    seeds: &'static str,
    arms: &'static [&'static str],
    wire: fn(&[u8]) -> usize,
}

const TARGETS: &[WireTarget] = &[
    WireTarget { seeds: "stt_wire", arms: stt::fuzz::ARMS, wire: stt::fuzz::wire },
    WireTarget { seeds: "tts_wire", arms: tts::fuzz::ARMS, wire: tts::fuzz::wire },
    WireTarget { seeds: "llm_wire", arms: llm::fuzz::ARMS, wire: llm::fuzz::wire },
];

/// Seed names ending so are error cases, which may decode to nothing.
const FAILURES: &[&str] = &["-error", "-exception", "-blocked", "-incomplete"];

#[test]
fn every_seed_decodes_and_every_arm_has_one() {
    for target in TARGETS {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target.seeds);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let n = (target.wire)(&std::fs::read(&path).unwrap());
            assert!(
                FAILURES.iter().any(|s| name.ends_with(s)) || n > 0,
                "{}: seed {name} decoded nothing",
                target.seeds
            );
            seen += 1;
        }
        assert!(seen >= target.arms.len(), "{}: a seed per arm at least", target.seeds);
    }
}
