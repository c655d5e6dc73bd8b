use super::*;
use crate::testdata::{self, RATE, TEXT_A, TEXT_B};

const FRAME_S: f64 = 0.02;

/// The envelope of the single speech segment in `pcm` (with silence around it), at 16 kHz.
fn live_envelope(speech: &[i16]) -> Vec<f32> {
    let mut pcm = testdata::silence(0.3);
    pcm.extend_from_slice(speech);
    pcm.extend(testdata::silence(0.6));
    let segs = segmenter::segments(&pcm, 320, VadConfig::default());
    assert_eq!(segs.len(), 1, "expected one segment");
    segs.into_iter().next().unwrap().2
}

#[test]
fn loads_sidecar_labels_and_skips_wavs_without_one() {
    let dir = testdata::catalog_dir();
    let cat = Catalog::from_dir(dir.path()).unwrap();
    assert_eq!(cat.len(), 2);
    let texts: Vec<&str> = cat.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, [TEXT_A, TEXT_B]);
    assert!((cat.entries[0].duration_s - 1.2).abs() < 0.021);
    assert!((cat.entries[1].duration_s - 2.0).abs() < 0.021);
}

#[test]
fn matches_direct_and_telephone_audio_and_rejects_strangers() {
    let dir = testdata::catalog_dir();
    let cat = Catalog::from_dir(dir.path()).unwrap();
    for (speech, text) in [(testdata::utterance_a(), TEXT_A), (testdata::utterance_b(), TEXT_B)] {
        assert_eq!(cat.transcribe(&live_envelope(&speech), FRAME_S), Some(text));
        let phone = testdata::telephone(&speech);
        assert_eq!(cat.transcribe(&live_envelope(&phone), FRAME_S), Some(text), "telephone path");
        // Quieter (−12 dB) still matches: the shape is level-independent.
        let quiet: Vec<i16> = phone.iter().map(|s| s / 4).collect();
        assert_eq!(cat.transcribe(&live_envelope(&quiet), FRAME_S), Some(text), "quiet");
    }
    assert_eq!(cat.transcribe(&live_envelope(&testdata::unknown()), FRAME_S), None);
    assert_eq!(Catalog::empty().transcribe(&live_envelope(&testdata::utterance_a()), FRAME_S), None);
    assert_eq!(placeholder(1.4), "[speech 1.4 s]");
}

#[test]
fn a_prefix_finds_its_utterance() {
    let dir = testdata::catalog_dir();
    let cat = Catalog::from_dir(dir.path()).unwrap();
    let b = testdata::utterance_b();
    // Running speech: the envelope so far, without the end.
    let mut pcm = testdata::silence(0.3);
    pcm.extend_from_slice(&b[..RATE as usize]);
    let mut seg = segmenter::Segmenter::new(VadConfig::default());
    let mut framer = segmenter::Framer::new(320);
    framer.feed(&pcm, |f| {
        seg.push_frame(f);
    });
    let (entry, heard) = cat.best_prefix(seg.envelope(), FRAME_S).unwrap();
    assert_eq!(entry.text, TEXT_B);
    assert!((heard - 0.5).abs() < 0.05, "{heard}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dir = testdata::TempDir::new();
    std::fs::write(dir.path().join("x.json"), "{not json").unwrap();
    testdata::write_wav(&dir.path().join("x.wav"), &testdata::utterance_a(), RATE);
    let err = Catalog::from_dir(dir.path()).unwrap_err();
    assert_eq!(err.code(), "catalog_sidecar");

    let dir = testdata::TempDir::new();
    std::fs::write(dir.path().join("y.json"), r#"{"utterances":[]}"#).unwrap();
    std::fs::write(dir.path().join("y.wav"), b"RIFF....not a wav").unwrap();
    assert_eq!(Catalog::from_dir(dir.path()).unwrap_err().code(), "catalog_wav");

    assert_eq!(Catalog::from_dir(dir.path().join("missing")).unwrap_err().code(), "catalog_io");
}

#[test]
fn split_text_by_sentence_or_duration() {
    assert_eq!(split_text(" Hi there. ", &[1.0]), ["Hi there."]);
    assert_eq!(split_text("Hello. What are your hours?", &[0.5, 1.5]), ["Hello.", "What are your hours?"]);
    assert_eq!(split_text("one two three four", &[1.0, 3.0]), ["one", "two three four"]);
    assert_eq!(split_text("one", &[1.0, 1.0, 1.0]), ["", "one", ""]);
}
