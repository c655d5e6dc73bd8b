//! Per-frame CPU cost of the media path, one 20 ms frame per iteration.
//!
//! Every step runs exactly as the session runtime does: reused buffers, state carried across
//! frames, no allocation in the loop. Input is a synthetic speech-like signal (harmonic voice
//! with a gliding pitch and syllable-rate envelope, including pauses) so the VAD, resampler
//! and Opus see realistic switching rather than a constant tone or silence.
//!
//! Run: `cargo bench -p media --bench media_path`. Each group reports time per 20 ms frame.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use media::opus_codec::{OpusDecoder, OpusEncoder};
use media::{g711, l16, samples_per_20ms, Resampler, Vad, VadConfig};

/// Long enough to cover several syllables and pauses, short enough to stay in cache-ish sizes.
const SIGNAL_SECS: f64 = 4.0;

/// Speech-like mono PCM16 at `rate`: pitch gliding 150–250 Hz, harmonics with a 1/k roll-off
/// up to 3.4 kHz, a ~4 Hz syllable envelope, and a 300 ms pause every 1.5 s.
fn speech_like(rate: u32) -> Vec<i16> {
    let n = (SIGNAL_SECS * f64::from(rate)) as usize;
    let fs = f64::from(rate);
    let nyquist = fs / 2.0;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            let f0 = 200.0 + 50.0 * (TAU * 0.7 * t).sin();
            phase = (phase + TAU * f0 / fs) % TAU;
            let mut v = 0.0;
            for k in 1..=16 {
                let fk = f0 * f64::from(k);
                if fk >= nyquist.min(3400.0) {
                    break;
                }
                v += (f64::from(k) * phase).sin() / f64::from(k);
            }
            let syllable = (TAU * 2.0 * t).sin().abs().powf(0.6);
            let pause = if t % 1.5 > 1.2 { 0.0 } else { 1.0 };
            let noise_floor = 30.0 * (TAU * 50.0 * t).sin();
            (v * syllable * pause * 6_000.0 + noise_floor).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Hands out consecutive `frame`-sized slices of `data`, wrapping at the end.
struct Frames<'a, T> {
    data: &'a [T],
    frame: usize,
    at: usize,
}

impl<'a, T> Frames<'a, T> {
    fn new(data: &'a [T], frame: usize) -> Self {
        assert!(data.len() >= frame && frame > 0);
        Self { data, frame, at: 0 }
    }

    fn next_frame(&mut self) -> &'a [T] {
        if self.at + self.frame > self.data.len() {
            self.at = 0;
        }
        let f = &self.data[self.at..self.at + self.frame];
        self.at += self.frame;
        f
    }
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g
}

/// Twilio → STT: µ-law 8 kHz in, VAD on the 8 kHz frame, upsample to 16 kHz, L16 out.
fn inbound_twilio_frame(c: &mut Criterion) {
    let pcm8 = speech_like(8000);
    let mut ulaw = Vec::new();
    g711::encode_ulaw_into(&pcm8, &mut ulaw);
    let mut frames = Frames::new(&ulaw, samples_per_20ms(8000));
    let mut rs = Resampler::new(8000, 16_000).expect("8k→16k resampler");
    let mut vad = Vad::new(VadConfig::default());
    let mut pcm = Vec::with_capacity(samples_per_20ms(8000));
    let mut up = Vec::with_capacity(2 * samples_per_20ms(16_000));
    let mut le = Vec::with_capacity(4 * samples_per_20ms(16_000));

    let mut g = configure(c, "inbound_twilio_frame");
    g.bench_function("20ms", |b| {
        b.iter(|| {
            g711::decode_ulaw_into(frames.next_frame(), &mut pcm);
            black_box(vad.push(&pcm));
            up.clear();
            rs.process(&pcm, &mut up).expect("resample");
            l16::encode_le_into(&up, &mut le);
            black_box(le.len())
        })
    });
    g.finish();
}

/// TTS → Twilio: 24 kHz PCM downsampled to 8 kHz, µ-law out.
fn outbound_tts_frame(c: &mut Criterion) {
    let pcm24 = speech_like(24_000);
    let mut frames = Frames::new(&pcm24, samples_per_20ms(24_000));
    let mut rs = Resampler::new(24_000, 8000).expect("24k→8k resampler");
    let mut down = Vec::with_capacity(2 * samples_per_20ms(8000));
    let mut ulaw = Vec::with_capacity(2 * samples_per_20ms(8000));

    let mut g = configure(c, "outbound_tts_frame");
    g.bench_function("20ms", |b| {
        b.iter(|| {
            down.clear();
            rs.process(frames.next_frame(), &mut down).expect("resample");
            g711::encode_ulaw_into(&down, &mut ulaw);
            black_box(ulaw.len())
        })
    });
    g.finish();
}

fn opus_decode_48k(c: &mut Criterion) {
    let pcm48 = speech_like(48_000);
    let mut enc = OpusEncoder::new(48_000).expect("opus encoder");
    let mut packet = Vec::new();
    let packets: Vec<Vec<u8>> = pcm48
        .chunks_exact(samples_per_20ms(48_000))
        .map(|f| {
            enc.encode(f, &mut packet).expect("opus encode");
            packet.clone()
        })
        .collect();
    let mut dec = OpusDecoder::new(48_000).expect("opus decoder");
    let mut out = Vec::with_capacity(samples_per_20ms(48_000) * 6);
    let mut at = 0usize;

    let mut g = configure(c, "opus_decode_48k");
    g.bench_function("20ms", |b| {
        b.iter(|| {
            let p = &packets[at];
            at = (at + 1) % packets.len();
            black_box(dec.decode(p, &mut out).expect("opus decode"))
        })
    });
    g.finish();
}

fn opus_encode_48k(c: &mut Criterion) {
    let pcm48 = speech_like(48_000);
    let mut frames = Frames::new(&pcm48, samples_per_20ms(48_000));
    let mut enc = OpusEncoder::new(48_000).expect("opus encoder");
    let mut packet = Vec::with_capacity(4000);

    let mut g = configure(c, "opus_encode_48k");
    g.bench_function("20ms", |b| {
        b.iter(|| black_box(enc.encode(frames.next_frame(), &mut packet).expect("opus encode")))
    });
    g.finish();
}

fn vad_only_8k(c: &mut Criterion) {
    let pcm8 = speech_like(8000);
    let mut frames = Frames::new(&pcm8, samples_per_20ms(8000));
    let mut vad = Vad::new(VadConfig::default());

    let mut g = configure(c, "vad_only_8k");
    g.bench_function("20ms", |b| b.iter(|| black_box(vad.push(frames.next_frame()))));
    g.finish();
}

fn ulaw_decode_only(c: &mut Criterion) {
    let pcm8 = speech_like(8000);
    let mut ulaw = Vec::new();
    g711::encode_ulaw_into(&pcm8, &mut ulaw);
    let mut frames = Frames::new(&ulaw, samples_per_20ms(8000));
    let mut pcm = Vec::with_capacity(samples_per_20ms(8000));

    let mut g = configure(c, "ulaw_decode_only");
    g.bench_function("20ms", |b| {
        b.iter(|| {
            g711::decode_ulaw_into(frames.next_frame(), &mut pcm);
            black_box(pcm.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    targets = inbound_twilio_frame, outbound_tts_frame, opus_decode_48k, opus_encode_48k, vad_only_8k, ulaw_decode_only
}
criterion_main!(benches);
