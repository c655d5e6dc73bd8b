// @switchboard/client: talk to a Switchboard agent from a browser or Node.
export { Call, SwitchboardError, mintClientToken, totalMicros, formatMicros, EVENT_TYPES } from './call.js';
export { startMicrophone } from './capture.js';
export { Playback } from './playback.js';
