//! The provider simulators as one unit: started in-process by sandbox mode, or as their own
//! process by `switchboard sim` (with a small control endpoint for tests and the load harness).

use crate::cli::{SimArgs, SimTuning};
use anyhow::Context;
use axum::{extract::State, routing::get, Json, Router};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub struct Sims {
    pub deepgram: stt::sim::DeepgramSim,
    pub openai: llm::sim::OpenAiSim,
    pub anthropic: llm::sim::AnthropicSim,
    pub google: llm::sim::GeminiSim,
    pub elevenlabs: tts::sim::ElevenLabsSim,
}

/// Providers the simulators stand in for.
pub const SIMULATED: [&str; 5] = ["deepgram", "openai", "anthropic", "google", "elevenlabs"];

impl Sims {
    /// Start the three simulators on loopback ports. `keys` maps provider → accepted keys.
    pub async fn start(calls: &Path, keys: &HashMap<String, Vec<String>>, t: &SimTuning) -> anyhow::Result<Sims> {
        let catalog = stt::sim::Catalog::from_dir(calls)
            .with_context(|| format!("loading the recorded-call catalog from {}", calls.display()))?;
        let keys_for = |p: &str| keys.get(p).cloned().unwrap_or_default();
        let deepgram = stt::sim::DeepgramSim::start(stt::sim::DeepgramSimConfig {
            keys: keys_for("deepgram").into(),
            final_delay: Duration::from_millis(t.sim_stt_final_ms),
            catalog: Arc::new(catalog),
            fail_after_audio_ms: t.sim_stt_fail_after_ms,
            ..Default::default()
        })
        .await
        .context("starting the Deepgram simulator")?;
        let openai = llm::sim::OpenAiSim::start(llm::sim::OpenAiSimConfig {
            keys: keys_for("openai").into(),
            first_token_delay: Duration::from_millis(t.sim_llm_first_token_ms),
            tokens_per_sec: t.sim_llm_tokens_per_sec,
            ..Default::default()
        })
        .await
        .context("starting the OpenAI simulator")?;
        let anthropic = llm::sim::AnthropicSim::start(llm::sim::AnthropicSimConfig {
            keys: keys_for("anthropic").into(),
            first_token_delay: Duration::from_millis(t.sim_llm_first_token_ms),
            tokens_per_sec: t.sim_llm_tokens_per_sec,
            ..Default::default()
        })
        .await
        .context("starting the Anthropic simulator")?;
        let google = llm::sim::GeminiSim::start(llm::sim::GeminiSimConfig {
            keys: keys_for("google").into(),
            first_token_delay: Duration::from_millis(t.sim_llm_first_token_ms),
            tokens_per_sec: t.sim_llm_tokens_per_sec,
            ..Default::default()
        })
        .await
        .context("starting the Gemini simulator")?;
        let elevenlabs = tts::sim::ElevenLabsSim::start(tts::sim::ElevenLabsSimConfig {
            keys: keys_for("elevenlabs").into(),
            first_audio_delay: Duration::from_millis(t.sim_tts_first_audio_ms),
            ms_per_char: t.sim_tts_ms_per_char,
            ..Default::default()
        })
        .await
        .context("starting the ElevenLabs simulator")?;
        Ok(Sims { deepgram, openai, anthropic, google, elevenlabs })
    }

    pub fn base_urls(&self) -> HashMap<String, Url> {
        HashMap::from([
            ("deepgram".to_string(), self.deepgram.base_url()),
            ("openai".to_string(), self.openai.base_url()),
            ("anthropic".to_string(), self.anthropic.base_url()),
            ("google".to_string(), self.google.base_url()),
            ("elevenlabs".to_string(), self.elevenlabs.base_url()),
        ])
    }
}

fn last4(k: &str) -> String {
    let n = k.chars().count();
    k.chars().skip(n.saturating_sub(4)).collect()
}

/// `switchboard sim`: run the simulators until interrupted. Prints one JSON line with their
/// URLs and the control endpoint on stdout.
pub async fn run(args: SimArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for kv in &args.keys {
        let (p, k) = kv
            .split_once('=')
            .with_context(|| format!("--key must be provider=key, got {:?}", kv.split('=').next()))?;
        keys.entry(p.to_string()).or_default().push(k.to_string());
    }
    for p in ["deepgram", "openai", "elevenlabs"] {
        keys.entry(p.to_string()).or_insert_with(|| vec!["sim-key".to_string()]);
    }
    let sims = Arc::new(Sims::start(&args.calls, &keys, &args.tuning).await?);
    let app = Router::new()
        .route("/", get(urls))
        .route("/keys", get(seen_keys))
        .route("/llm/last-request", get(last_request))
        .with_state(sims.clone());
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let control = listener.local_addr()?;
    let mut line: HashMap<String, String> = sims.base_urls().into_iter().map(|(k, v)| (k, v.to_string())).collect();
    line.insert("control".into(), format!("http://{control}"));
    println!("{}", serde_json::to_string(&line)?);
    tracing::info!(%control, "simulators running");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn urls(State(s): State<Arc<Sims>>) -> Json<HashMap<String, Url>> {
    Json(s.base_urls())
}

/// Last 4 characters of the key of every connection or request, in arrival order.
async fn seen_keys(State(s): State<Arc<Sims>>) -> Json<serde_json::Value> {
    let l4 = |v: Vec<String>| v.iter().map(|k| last4(k)).collect::<Vec<_>>();
    Json(serde_json::json!({
        "deepgram": l4(s.deepgram.seen_keys()),
        "openai": l4(s.openai.seen_keys()),
        "anthropic": l4(s.anthropic.seen_keys()),
        "google": l4(s.google.seen_keys()),
        "elevenlabs": l4(s.elevenlabs.seen_keys()),
    }))
}

async fn last_request(State(s): State<Arc<Sims>>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(s.openai.last_request_messages()).unwrap_or_default())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
