//! Command line: `serve`, `call`, `sim`. Doc comments here are the `--help` text.

pub use crate::gateways::Gateway;
use crate::telemetry::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Real-time voice session orchestrator")]
pub struct Cli {
    /// Configuration file (TOML; keys are the flags' names, e.g. `listen = "0.0.0.0:8080"`).
    /// Default: `switchboard.toml` in the current directory, if there is one. Environment
    /// variables override it, flags override both.
    #[arg(long, global = true, value_name = "FILE", env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP + websocket server. With no provider keys set it runs in sandbox mode,
    /// with the provider simulators started in-process.
    Serve(ServeArgs),
    /// Print the configuration `serve` would run with (defaults, the config file, the
    /// environment and these flags, in that order), secrets redacted.
    Config(ServeArgs),
    /// Play a recorded call (WAV) into a server the way a gateway would, and print the
    /// conversation and its usage records.
    Call(CallArgs),
    /// Run every provider simulator (STT, LLM and TTS) and the carriers' REST API simulator as
    /// their own process, printing their URLs as one JSON line.
    Sim(SimArgs),
    /// Load harness: N concurrent gateway calls against a server whose providers are simulated
    /// in another process; reports capacity, CPU, memory and the server's hop latencies.
    Bench(BenchArgs),
    /// Operator: manage orgs in the store the server uses.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Operator: inspect the rate table.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Operator: master keys of the credential vault.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document of the HTTP API, generated from the code (what
    /// `/api/openapi.json` serves; `docs/openapi.json` is this output).
    Openapi,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new random master key as `ID:base64`, to append to SWITCHBOARD_MASTER_KEYS.
    GenerateMaster {
        #[arg(long)]
        id: String,
    },
    /// Re-encrypt every saved credential with the newest master key (the last one in
    /// SWITCHBOARD_MASTER_KEYS). Old keys can be removed from the list afterwards.
    RotateMaster {
        #[arg(long, default_value = "sqlite:switchboard.db", env = "SWITCHBOARD_DATABASE")]
        database: String,
    },
}

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Create an org and print its API key (shown once; only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "pro")]
        plan: String,
        /// Agency owner of this sub-account.
        #[arg(long)]
        parent: Option<String>,
        /// Prepaid wallet to start with, in micro-USD.
        #[arg(long, default_value_t = 0)]
        wallet_micros: i64,
        #[arg(long, default_value = "sqlite:switchboard.db", env = "SWITCHBOARD_DATABASE")]
        database: String,
    },
}

#[derive(Subcommand)]
pub enum RatesCommand {
    /// Print the rate table the server uses (the store; seeded from the CSV when empty):
    /// prices, managed flag, and UNVERIFIED placeholders.
    List {
        /// Rate table seed (CSV); the built-in one when unset.
        #[arg(long, env = "SWITCHBOARD_RATES")]
        rates: Option<PathBuf>,
        #[arg(long, default_value = "sqlite:switchboard.db", env = "SWITCHBOARD_DATABASE")]
        database: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        provider: Option<String>,
    },
    /// Flip whether the platform serves PROVIDER with its own key (optionally one SERVICE).
    /// Takes effect at the next session on every server using this store, without a restart.
    /// Turning it on needs the platform key (`<PROVIDER>_API_KEY`) in this environment, as on
    /// the servers.
    SetManaged {
        provider: String,
        #[arg(action = clap::ArgAction::Set)]
        managed: bool,
        service: Option<String>,
        /// Rate table seed (CSV); the built-in one when unset.
        #[arg(long, env = "SWITCHBOARD_RATES")]
        rates: Option<PathBuf>,
        #[arg(long, default_value = "sqlite:switchboard.db", env = "SWITCHBOARD_DATABASE")]
        database: String,
    },
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on, `HOST:PORT` (a name such as `localhost:8080` is resolved; port 0
    /// picks a free one; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", env = "SWITCHBOARD_LISTEN")]
    pub listen: String,
    /// Store URL: `sqlite:PATH` (created if missing) or `sqlite::memory:`.
    #[arg(long, default_value = "sqlite:switchboard.db", env = "SWITCHBOARD_DATABASE")]
    pub database: String,
    /// Rate table seed (CSV); the one built into the binary when unset.
    #[arg(long, env = "SWITCHBOARD_RATES")]
    pub rates: Option<PathBuf>,
    /// Recorded calls the sandbox STT simulator recognizes (a folder of WAV + JSON sidecars);
    /// the ones built into the binary when unset.
    #[arg(long, env = "SWITCHBOARD_CALLS")]
    pub calls: Option<PathBuf>,
    /// Provider base URL override (repeatable), e.g. to point at `switchboard sim`:
    /// `stt.deepgram=URL` for one service, or `deepgram=URL` for every service of the provider.
    #[arg(
        long = "provider-url",
        value_name = "[SERVICE.]PROVIDER=URL",
        env = "SWITCHBOARD_PROVIDER_URLS",
        value_delimiter = ','
    )]
    pub provider_urls: Vec<String>,
    /// Keep each call's transcript (the caller's and the agent's lines) for the calls API and
    /// the console; `false` keeps no call content.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "SWITCHBOARD_TRANSCRIPTS")]
    pub transcripts: bool,
    /// Seconds between usage checkpoints of a running call.
    #[arg(long, default_value_t = 5, env = "SWITCHBOARD_CHECKPOINT_SECS")]
    pub checkpoint_secs: u64,
    /// Public base URL gateways reach this server at (used in TwiML); default from the Host header.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Also accept Asterisk AudioSocket calls (raw TCP; dialplan `AudioSocket(uuid,host:port)`)
    /// on this address. Off by default; port 0 picks a free one, printed like the HTTP address.
    #[arg(long, value_name = "ADDR", env = "SWITCHBOARD_AUDIOSOCKET_LISTEN")]
    pub audiosocket_listen: Option<SocketAddr>,
    /// Agent that answers AudioSocket calls: the protocol carries only the call's UUID.
    #[arg(long, default_value = "default", env = "SWITCHBOARD_AUDIOSOCKET_AGENT")]
    pub audiosocket_agent: String,
    /// Milliseconds an AudioSocket connection has to send its UUID before it is refused.
    #[arg(long, default_value_t = 5000, env = "SWITCHBOARD_AUDIOSOCKET_UUID_TIMEOUT_MS")]
    pub audiosocket_uuid_timeout_ms: u64,
    /// AudioSocket calls must have their UUID registered first (`POST /api/audiosocket/calls`).
    #[arg(long, env = "SWITCHBOARD_AUDIOSOCKET_REQUIRE_REGISTRATION")]
    pub audiosocket_require_registration: bool,
    /// Allow the AudioSocket listener on a public address (it has no authentication of its own;
    /// by default only loopback and private addresses are accepted).
    #[arg(long, env = "SWITCHBOARD_AUDIOSOCKET_ALLOW_PUBLIC")]
    pub audiosocket_allow_public: bool,
    /// Let agents' webhook tools call private addresses (loopback, 10/8, 192.168/16, link-local,
    /// …). Off by default, so an org's webhook cannot reach this server's own network (SSRF);
    /// on in sandbox mode.
    #[arg(long, env = "SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// Carrier REST API base override (repeatable), for hang-ups and Telnyx Call Control:
    /// `twilio=URL`, `telnyx=URL`, `plivo=URL`, `vonage=URL`.
    #[arg(long = "carrier-url", value_name = "CARRIER=URL", env = "SWITCHBOARD_CARRIER_URLS", value_delimiter = ',')]
    pub carrier_urls: Vec<String>,
    /// On SIGTERM/SIGINT, live calls may finish for this many seconds before they are ended
    /// with a closing line; new calls are refused meanwhile (`/healthz` answers 503).
    #[arg(long, default_value_t = 30, env = "SWITCHBOARD_DRAIN_SECS")]
    pub drain_secs: u64,
    /// After the calls of a stopping server have ended, how long it waits for usage the store
    /// has not taken yet (a store that failed during the last calls); what is still unwritten
    /// then goes to the spool.
    #[arg(long, default_value_t = 30, env = "SWITCHBOARD_USAGE_WAIT_SECS")]
    pub usage_wait_secs: u64,
    /// Usage records the store never took (down past a call's retries, or at shutdown), kept
    /// one JSON line per session and written to the store at the next start. One per node.
    #[arg(long, default_value = "switchboard-unbilled.jsonl", env = "SWITCHBOARD_SPOOL")]
    pub spool: PathBuf,
    /// This node's id, recorded on its sessions and renewed as a lease in the store; a random
    /// one per process when unset. A stable id (the systemd instance name) lets a restarted
    /// node close its own leftover sessions at once instead of after the lease.
    #[arg(long, env = "SWITCHBOARD_NODE_ID")]
    pub node_id: Option<String>,
    /// Seconds a node's lease lasts without renewal (renewed every third of it). When it runs
    /// out, another node sharing the store closes that node's sessions (`node_lost`).
    #[arg(long, default_value_t = 15, env = "SWITCHBOARD_LEASE_SECS")]
    pub lease_secs: u64,
    /// A started call with no inbound media for this many seconds is ended (`idle_timeout`).
    #[arg(long, default_value_t = 30, env = "SWITCHBOARD_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: u64,
    /// Log lines on stderr: `auto` (JSON lines when stderr is not a terminal, text on one),
    /// `text` or `json`. Never colour codes outside a terminal.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Export traces (a trace per call: its turns and provider requests) over OTLP/HTTP to this
    /// collector, e.g. `http://127.0.0.1:4318` (sent to its `/v1/traces`). Off when unset;
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is used when this is not set.
    #[arg(long, value_name = "URL", env = "SWITCHBOARD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    #[command(flatten)]
    pub sim: SimTuning,
}

impl ServeArgs {
    /// The collector traces go to: `--otlp-endpoint` (or its variable or config key), else
    /// OpenTelemetry's own `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` keeps tracing off.
    pub fn otlp_endpoint(&self) -> Option<String> {
        let standard = || std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
        self.otlp_endpoint.clone().or_else(standard).filter(|u| !u.trim().is_empty())
    }
}

#[derive(Args, Clone)]
pub struct CallArgs {
    /// Recorded call: 16-bit PCM mono WAV.
    pub file: PathBuf,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "SWITCHBOARD_SERVER")]
    pub server: String,
    /// Which gateway to play: each speaks that carrier's own wire format to the server's
    /// endpoint for it, with the call id the carrier would use.
    #[arg(long, value_enum, default_value = "twilio")]
    pub gateway: Gateway,
    /// Send audio as fast as the server accepts instead of in real time.
    #[arg(long)]
    pub fast: bool,
    /// One JSON object per line (`type`: transcript, agent, barge_in, audio, usage, error, end).
    #[arg(long)]
    pub json: bool,
    /// Save the agent's audio, as received, to this WAV file.
    #[arg(long)]
    pub save_audio: Option<PathBuf>,
    /// Agent to call.
    #[arg(long, default_value = "default")]
    pub agent: String,
    /// The admin token or an org API key (`sk_…`): sent as `Authorization: Bearer` on the media
    /// upgrade (server-to-server calls) and used to watch the call's events. With `--number` it
    /// is only used to watch.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A client token from `POST /api/client-tokens` (the browser's way in), for `--gateway client`.
    #[arg(long)]
    pub client_token: Option<String>,
    /// Call this number the way the carrier would: post its signed answer webhook, then open
    /// the media stream the answer names, with its stream token. Needs `--carrier-credential`.
    #[arg(long, value_name = "E164")]
    pub number: Option<String>,
    /// The carrier account's credential as JSON (or `@file`): Twilio `{"accountSid","authToken"}`,
    /// Telnyx `{"signingKey"}` (base64 Ed25519 seed the webhook is signed with), Plivo
    /// `{"authId","authToken"}`, Vonage `{"applicationId","signatureSecret"}`.
    #[arg(long, value_name = "JSON")]
    pub carrier_credential: Option<String>,
    /// Seconds of silence to send after the recording ends. Unset: silence until the agent has
    /// answered the caller's last words and finished speaking (at most 20 s).
    #[arg(long)]
    pub tail: Option<f64>,
    /// The server's AudioSocket address (its `--audiosocket-listen`), for `--gateway asterisk`.
    #[arg(long, value_name = "HOST:PORT")]
    pub audiosocket: Option<String>,
}

/// The gateways the load harness can play (Twilio Media Streams through its signed webhook).
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum BenchGateway {
    Twilio,
}

#[derive(Args, Clone)]
pub struct SimArgs {
    /// Address of the simulators' control endpoint (their URLs and what they saw).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Accepted key, `provider=key` (repeatable). Without any, each simulator accepts `sim-key`.
    #[arg(long = "key", value_name = "PROVIDER=KEY")]
    pub keys: Vec<String>,
    /// A carrier account the carrier REST simulator accepts (repeatable): `twilio={"accountSid","authToken"}`,
    /// `telnyx={"apiKey"}`, `plivo={"authId","authToken"}`, `vonage={"applicationId","publicKeyFile"}`.
    /// Its URL is printed as `carrier`; `GET <carrier>/_sim/hangups` lists the hang-ups it took.
    #[arg(long = "carrier-account", value_name = "CARRIER=JSON")]
    pub carrier_accounts: Vec<String>,
    /// A slow carrier: every carrier REST request takes effect this many ms after it arrives
    /// (and only if the client still waits), to test what happens while a transfer is in flight.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub carrier_delay_ms: u64,
    /// Recorded calls the STT simulator recognizes (a folder); the built-in ones when unset.
    #[arg(long)]
    pub calls: Option<PathBuf>,
    #[command(flatten)]
    pub tuning: SimTuning,
}

/// Simulator latencies and faults.
#[derive(Args, Clone, Debug)]
pub struct SimTuning {
    /// STT: ms from end of speech to the final result.
    #[arg(long, default_value_t = 300)]
    pub sim_stt_final_ms: u64,
    /// LLM: ms to the first token.
    #[arg(long, default_value_t = 350)]
    pub sim_llm_first_token_ms: u64,
    /// LLM: tokens per second.
    #[arg(long, default_value_t = 60.0)]
    pub sim_llm_tokens_per_sec: f64,
    /// TTS: ms to the first audio.
    #[arg(long, default_value_t = 150)]
    pub sim_tts_first_audio_ms: u64,
    /// TTS: ms of audio per character of text.
    #[arg(long, default_value_t = 50)]
    pub sim_tts_ms_per_char: u32,
    /// Fault: the STT simulator closes the stream (1011) after this many ms of audio.
    #[arg(long)]
    pub sim_stt_fail_after_ms: Option<u64>,
    /// Quirk: the Deepgram simulator's closing `Metadata.duration` is this percentage of the
    /// audio it received (the session reconciles its STT line to the provider's figure).
    #[arg(long, default_value_t = 100)]
    pub sim_stt_billed_pct: u32,
    /// Fault: the LLM simulators cut each stream after this many tokens (no usage, no end).
    #[arg(long)]
    pub sim_llm_drop_after_tokens: Option<usize>,
    /// Fault: every TTS simulator fails a stream once it has voiced this many characters, as its
    /// provider would (an error message or close 1011; Polly cuts the response body).
    #[arg(long)]
    pub sim_tts_fail_after_chars: Option<u64>,
    /// Apply the fault flags above only to this provider's simulators (failover tests: the
    /// primary fails, its fallback does not). Default: every simulator that has the fault.
    #[arg(long, value_name = "PROVIDER")]
    pub sim_fault_only: Option<String>,
    /// Fault: this simulator (`SERVICE.PROVIDER`, e.g. `llm.openai`; repeatable) accepts every
    /// connection and never answers — no response, no handshake.
    #[arg(long = "sim-stall", value_name = "SERVICE.PROVIDER")]
    pub sim_stall: Vec<String>,
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 20)]
    pub calls: usize,
    /// Seconds each call lasts (the recorded calls are looped); with `--call-seconds`, how long
    /// each of the `--calls` slots keeps placing calls.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Churn: each slot places back-to-back calls of this many seconds until `--duration` is
    /// over (the memory-growth check: thousands of calls placed and ended).
    #[arg(long)]
    pub call_seconds: Option<f64>,
    /// Seconds over which the calls are started.
    #[arg(long, default_value_t = 2.0)]
    pub ramp: f64,
    /// Gateway to play.
    #[arg(long, value_enum, default_value = "twilio")]
    pub gateway: BenchGateway,
    /// A server already running (its providers pointed at `switchboard sim`); by default the
    /// bench starts `switchboard sim` and `switchboard serve` as their own processes.
    #[arg(long)]
    pub server: Option<String>,
    /// PID of `--server`, to read its CPU time and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Recorded calls to replay.
    #[arg(long = "calls-dir", default_value = "assets/calls")]
    pub calls_dir: PathBuf,
    /// The bench agent's TTS as `PROVIDER/MODEL` (e.g. `deepgram/aura-2`) with the provider's
    /// stock voice, or `PROVIDER/MODEL/VOICE` (e.g. `deepgram/flux/alexis-en`), served on the
    /// platform's key; the default agent's ElevenLabs when unset.
    #[arg(long, value_name = "PROVIDER/MODEL[/VOICE]")]
    pub tts: Option<String>,
    /// Run the server the bench starts under this command (words split on spaces), e.g.
    /// `valgrind --tool=callgrind --instr-atstart=no`: instruction counts do not vary with the
    /// machine's noise the way CPU seconds do (`bench/callgrind.sh`).
    #[arg(long, value_name = "COMMAND")]
    pub server_wrapper: Option<String>,
    /// How long the simulators and the server may take to print their addresses (a server
    /// under valgrind takes tens of seconds).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub start_timeout: u64,
}
