// AudioWorklet processor: microphone samples at the context's rate in, PCM16 frames of
// `frameMs` at `targetRate` out (posted as transferable ArrayBuffers). Usually the context
// already runs at `targetRate` (step 1); where a browser refuses that (Firefox), this resamples.
import { FrameResampler } from './resample.js';

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 20 } = options.processorOptions || {};
    this.resampler = new FrameResampler({
      inputRate: sampleRate, targetRate, frameMs,
      onFrame: (frame) => this.port.postMessage(frame.buffer, [frame.buffer]),
    });
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) this.resampler.push(input);
    return true;
  }
}

registerProcessor('switchboard-capture', CaptureProcessor);
