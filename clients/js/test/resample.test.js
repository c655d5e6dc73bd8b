// The capture worklet's resampler, without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameResampler } from '../src/resample.js';

function tone(rate, hz, seconds, amp = 0.5) {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amp * Math.sin((2 * Math.PI * hz * i) / rate);
  return out;
}

/** Frequency from zero crossings, and RMS, of PCM16 samples. */
function measure(pcm, rate) {
  let crossings = 0;
  let sum = 0;
  for (let i = 1; i < pcm.length; i++) {
    if ((pcm[i - 1] < 0) !== (pcm[i] < 0)) crossings++;
    sum += (pcm[i] / 32768) ** 2;
  }
  return { hz: (crossings / 2) * (rate / pcm.length), rms: Math.sqrt(sum / pcm.length) };
}

for (const inputRate of [48000, 44100, 16000]) {
  test(`${inputRate} Hz in 128-sample blocks → 20 ms frames of 16 kHz PCM16, pitch and level kept`, () => {
    const frames = [];
    const r = new FrameResampler({ inputRate, targetRate: 16000, frameMs: 20, onFrame: (f) => frames.push(f) });
    const input = tone(inputRate, 440, 1.0);
    for (let i = 0; i < input.length; i += 128) r.push(input.subarray(i, i + 128));
    assert.ok(frames.every((f) => f.length === 320));
    assert.ok(Math.abs(frames.length - 50) <= 1, `${frames.length} frames for 1 s`);
    const all = new Int16Array(frames.length * 320);
    frames.forEach((f, i) => all.set(f, i * 320));
    const { hz, rms } = measure(all, 16000);
    assert.ok(Math.abs(hz - 440) < 5, `pitch ${hz} Hz`);
    assert.ok(Math.abs(rms - 0.5 / Math.SQRT2) < 0.01, `rms ${rms}`);
  });
}

test('clipping: samples beyond ±1 saturate instead of wrapping', () => {
  const frames = [];
  const r = new FrameResampler({ inputRate: 16000, onFrame: (f) => frames.push(f) });
  r.push(new Float32Array(400).fill(1.7));
  r.push(new Float32Array(400).fill(-1.7));
  assert.equal(frames[0][10], 32767);
  assert.equal(frames[1][frames[1].length - 10], -32768);
});
