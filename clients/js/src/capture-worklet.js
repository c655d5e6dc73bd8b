// AudioWorklet processor: microphone samples at the context's rate in, PCM16 frames of
// `frameSamples` at `targetRate` out (posted as transferable ArrayBuffers). Resampling here
// rather than with `new AudioContext({sampleRate})` keeps Firefox working, which refuses to
// connect a microphone to a context of another rate.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 20 } = options.processorOptions || {};
    this.step = sampleRate / targetRate; // input samples per output sample
    this.pos = 0; // fractional read position into the current input block
    this.last = 0; // previous block's last sample, for interpolation across blocks
    this.frame = new Int16Array(Math.round((targetRate * frameMs) / 1000));
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    // Linear interpolation between samples i and i+1; i = -1 is the previous block's last.
    while (this.pos < input.length - 1) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.last : input[i];
      const b = input[i + 1];
      const s = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.fill === this.frame.length) {
        const out = this.frame.slice();
        this.port.postMessage(out.buffer, [out.buffer]);
        this.fill = 0;
      }
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1];
    return true;
  }
}

registerProcessor('switchboard-capture', CaptureProcessor);
