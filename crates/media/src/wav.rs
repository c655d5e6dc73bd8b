//! WAV files for fixtures, recordings and offline engines (espeak-ng, piper).
//!
//! Only PCM16 is read: everything downstream is PCM16 mono, and silently converting float
//! or 24-bit audio would hide a misconfigured engine. Multi-channel PCM16 is averaged to mono.

use std::path::Path;

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    #[error("wav I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed wav: {0}")]
    Malformed(String),
    #[error("unsupported wav format: {bits}-bit {kind}, {channels} channel(s); need PCM16")]
    Unsupported { bits: u16, kind: &'static str, channels: u16 },
    #[error("wav sample rate must be non-zero")]
    ZeroSampleRate,
}

impl WavError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "wav_io",
            Self::Malformed(_) => "wav_malformed",
            Self::Unsupported { .. } => "wav_unsupported_format",
            Self::ZeroSampleRate => "wav_zero_sample_rate",
        }
    }
}

impl From<hound::Error> for WavError {
    fn from(e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(io) => Self::Io(io),
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// Read a PCM16 WAV as mono samples plus its sample rate.
pub fn read_wav(path: impl AsRef<Path>) -> Result<(Vec<i16>, u32), WavError> {
    decode(hound::WavReader::open(path)?)
}

/// [`read_wav`] of a WAV held in memory (recordings embedded in the binary).
pub fn read_wav_bytes(bytes: &[u8]) -> Result<(Vec<i16>, u32), WavError> {
    decode(hound::WavReader::new(std::io::Cursor::new(bytes))?)
}

fn decode<R: std::io::Read>(mut reader: hound::WavReader<R>) -> Result<(Vec<i16>, u32), WavError> {
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 || spec.channels == 0 {
        let kind = match spec.sample_format {
            hound::SampleFormat::Int => "integer",
            hound::SampleFormat::Float => "float",
        };
        return Err(WavError::Unsupported { bits: spec.bits_per_sample, kind, channels: spec.channels });
    }
    if spec.sample_rate == 0 {
        return Err(WavError::ZeroSampleRate);
    }
    let channels = usize::from(spec.channels);
    let mut samples = Vec::with_capacity(reader.len() as usize / channels);
    if channels == 1 {
        for s in reader.samples::<i16>() {
            samples.push(s?);
        }
    } else {
        let (mut sum, mut n) = (0i32, 0usize);
        for s in reader.samples::<i16>() {
            sum += i32::from(s?);
            n += 1;
            if n == channels {
                samples.push((sum / channels as i32) as i16);
                (sum, n) = (0, 0);
            }
        }
    }
    Ok((samples, spec.sample_rate))
}

/// Write mono PCM16 samples as a WAV file.
pub fn write_wav(path: impl AsRef<Path>, samples: &[i16], sample_rate: u32) -> Result<(), WavError> {
    if sample_rate == 0 {
        return Err(WavError::ZeroSampleRate);
    }
    let spec =
        hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(path, spec)?;
    let mut fast = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        fast.write_sample(s);
    }
    fast.flush()?;
    writer.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("media-wav-{}-{name}.wav", std::process::id()))
    }

    #[test]
    fn mono_round_trip() {
        let path = tmp("mono");
        let samples: Vec<i16> = (0..1000).map(|i| (i * 37 % 65536 - 32768) as i16).collect();
        write_wav(&path, &samples, 16_000).unwrap();
        let (back, rate) = read_wav(&path).unwrap();
        assert_eq!(rate, 16_000);
        assert_eq!(back, samples);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn stereo_is_downmixed() {
        let path = tmp("stereo");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (l, r) in [(100i16, 300i16), (-1000, 1000), (32767, 32767), (-32768, -32768)] {
            w.write_sample(l).unwrap();
            w.write_sample(r).unwrap();
        }
        w.finalize().unwrap();
        let (back, rate) = read_wav(&path).unwrap();
        assert_eq!(rate, 8000);
        assert_eq!(back, [200, 0, 32767, -32768]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn float_and_24_bit_are_rejected() {
        let path = tmp("float");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        let err = read_wav(&path).unwrap_err();
        assert!(matches!(err, WavError::Unsupported { bits: 32, kind: "float", channels: 1 }), "{err}");
        std::fs::remove_file(&path).unwrap();

        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(1i32).unwrap();
        w.finalize().unwrap();
        assert_eq!(read_wav(&path).unwrap_err().code(), "wav_unsupported_format");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn missing_and_garbage_files_are_typed_errors() {
        assert_eq!(read_wav(tmp("does-not-exist")).unwrap_err().code(), "wav_io");
        let path = tmp("garbage");
        std::fs::write(&path, b"RIFF\x04\x00\x00\x00junkjunk").unwrap();
        assert_eq!(read_wav(&path).unwrap_err().code(), "wav_malformed");
        std::fs::remove_file(path).unwrap();
        assert_eq!(write_wav(tmp("zero"), &[0], 0).unwrap_err().code(), "wav_zero_sample_rate");
    }
}
