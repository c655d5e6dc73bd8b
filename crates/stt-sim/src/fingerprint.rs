//! Loudness-envelope fingerprints: what survives a telephone path (band limit, µ-law, resampling)
//! is the syllable rhythm, so two segments match when their dB envelopes correlate.

/// Envelope floor: quieter frames are silence, whatever the codec's noise did to them.
pub(crate) const SILENCE_DB: f32 = -60.0;
/// Points an envelope is resampled to before comparing; 32 keeps syllable detail for 1–5 s.
pub(crate) const POINTS: usize = 32;

/// A length-normalised, mean-removed, unit-length envelope. All zeros when the input is flat.
pub(crate) type Shape = [f32; POINTS];

pub(crate) fn shape(env: &[f32]) -> Shape {
    let mut out = [0.0f32; POINTS];
    match env.len() {
        0 => return out,
        1 => out = [env.first().copied().unwrap_or(SILENCE_DB); POINTS],
        n => {
            let step = (n - 1) as f32 / (POINTS - 1) as f32;
            for (i, o) in out.iter_mut().enumerate() {
                let x = i as f32 * step;
                let lo = (x.floor() as usize).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                let frac = x - lo as f32;
                let a = env.get(lo).copied().unwrap_or(SILENCE_DB);
                let b = env.get(hi).copied().unwrap_or(SILENCE_DB);
                *o = a + (b - a) * frac;
            }
        }
    }
    let mean = out.iter().sum::<f32>() / POINTS as f32;
    out.iter_mut().for_each(|v| *v -= mean);
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm < 1e-3 {
        return [0.0; POINTS];
    }
    out.iter_mut().for_each(|v| *v /= norm);
    out
}

/// Frames an edge may move between two renditions: a quiet onset ("th", "s") can fall under
/// the VAD threshold after a telephone path cuts its high frequencies.
pub(crate) const MAX_TRIM: u8 = 4;

/// The shape of an envelope with `start`/`end` frames trimmed off.
#[derive(Debug, Clone)]
pub(crate) struct Trim {
    pub start: u8,
    pub end: u8,
    pub shape: Shape,
}

/// Shapes for every trim of up to [`MAX_TRIM`] frames at either edge (25 shapes).
pub(crate) fn trims(env: &[f32]) -> Vec<Trim> {
    let mut out = Vec::with_capacity(usize::from(MAX_TRIM + 1).pow(2));
    for start in 0..=MAX_TRIM {
        for end in 0..=MAX_TRIM {
            let (s, e) = (usize::from(start), usize::from(end));
            if let Some(inner) = env.get(s..env.len().saturating_sub(e)).filter(|i| i.len() >= 2) {
                out.push(Trim { start, end, shape: shape(inner) });
            }
        }
    }
    out
}

/// Best correlation over edge alignments: at each edge, one side or the other is trimmed.
pub(crate) fn aligned_similarity(a: &[Trim], b: &[Trim]) -> f32 {
    let mut best = f32::MIN;
    for x in a {
        for y in b.iter().filter(|y| (x.start == 0 || y.start == 0) && (x.end == 0 || y.end == 0)) {
            best = best.max(similarity(&x.shape, &y.shape));
        }
    }
    if best == f32::MIN {
        0.0
    } else {
        best
    }
}

/// Normalised correlation in [-1, 1]; 0 when either shape is flat.
pub(crate) fn similarity(a: &Shape, b: &Shape) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_length_do_not_matter_but_rhythm_does() {
        let env: Vec<f32> = (0..50).map(|i| if (i / 10) % 2 == 0 { -20.0 } else { -50.0 }).collect();
        let quieter_longer: Vec<f32> = (0..60).map(|i| if (i / 12) % 2 == 0 { -30.0 } else { -58.0 }).collect();
        let other: Vec<f32> = (0..50).map(|i| if (i / 5) % 2 == 0 { -20.0 } else { -50.0 }).collect();
        let a = shape(&env);
        assert!(similarity(&a, &a) > 0.999);
        assert!(similarity(&a, &shape(&quieter_longer)) > 0.9);
        assert!(similarity(&a, &shape(&other)) < 0.5);
        assert_eq!(shape(&[-20.0; 40]), [0.0; POINTS]);
        assert_eq!(similarity(&a, &shape(&[])), 0.0);
    }

    #[test]
    fn alignment_forgives_a_lost_onset() {
        let env: Vec<f32> = (0..60).map(|i| if (i / 7) % 3 == 0 { -50.0 } else { -20.0 }).collect();
        let late = &env[3..];
        let plain = similarity(&shape(&env), &shape(late));
        let aligned = aligned_similarity(&trims(&env), &trims(late));
        assert!(aligned > 0.99 && aligned > plain, "{plain} {aligned}");
        assert_eq!(trims(&env).len(), 25);
        assert_eq!(aligned_similarity(&trims(&env), &trims(&[])), 0.0);
    }
}
