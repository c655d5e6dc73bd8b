//! The provider simulators as one unit: started in-process by sandbox mode, or as their own
//! process by `switchboard sim` (with a small control endpoint for tests and the load harness).

use crate::cli::{SimArgs, SimTuning};
use anyhow::Context;
use axum::{extract::State, routing::get, Json, Router};
use billing::Service;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Every registered simulator, keyed `service.provider` (`stt.deepgram`, `tts.deepgram`).
pub struct Sims {
    pub running: Vec<(Service, String, Box<dyn simkit::RunningSim>)>,
}

/// `(service, provider)` of every simulator the crates register.
pub fn simulated() -> Vec<(Service, &'static str)> {
    let stt = stt_sim::registry::SIMS.iter().map(|(n, _)| (Service::Stt, *n));
    let llm = llm_sim::registry::SIMS.iter().map(|api| (Service::Llm, api.name()));
    let tts = tts_sim::registry::SIMS.iter().map(|(n, _)| (Service::Tts, *n));
    stt.chain(llm).chain(tts).collect()
}

/// Provider names with at least one simulator.
pub fn simulated_providers() -> Vec<&'static str> {
    let mut v: Vec<_> = simulated().into_iter().map(|(_, p)| p).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The key `provider`'s simulator and adapter share, made from `secret`: the AWS providers'
/// adapters sign with `ACCESS_KEY_ID:SECRET` and their simulators find the secret by the id,
/// so a bare string would be refused as malformed; every other provider takes it as it is.
/// The id travels in the clear (SigV4's `Authorization` header, the simulators' records), so
/// it is made from the provider's name, never from the secret.
pub fn key_for(provider: &str, secret: &str) -> String {
    if crate::server::AWS_PROVIDERS.contains(&provider) {
        format!("SIM{}:{secret}", provider.to_ascii_uppercase())
    } else {
        secret.to_string()
    }
}

impl Sims {
    /// Start every registered simulator on a loopback port. `keys` maps provider → accepted keys
    /// (a provider's simulators for different services share its keys, like the real service).
    pub async fn start(
        calls: Option<&Path>,
        keys: &HashMap<String, Vec<String>>,
        t: &SimTuning,
    ) -> anyhow::Result<Sims> {
        let catalog = Arc::new(crate::assets::catalog(calls)?);
        let tuning = simkit::Tuning {
            stt_final: Duration::from_millis(t.sim_stt_final_ms),
            stt_fail_after_audio_ms: t.sim_stt_fail_after_ms,
            stt_billed_pct: t.sim_stt_billed_pct,
            llm_first_token: Duration::from_millis(t.sim_llm_first_token_ms),
            llm_tokens_per_sec: t.sim_llm_tokens_per_sec,
            llm_drop_after_tokens: t.sim_llm_drop_after_tokens,
            tts_first_audio: Duration::from_millis(t.sim_tts_first_audio_ms),
            tts_ms_per_char: t.sim_tts_ms_per_char,
            tts_fail_after_chars: t.sim_tts_fail_after_chars,
        };
        let tuning_for = |provider: &str| match &t.sim_fault_only {
            Some(only) if only != provider => tuning.without_faults(),
            _ => tuning.clone(),
        };
        let keys_for = |p: &str| simkit::SimKeys::from(keys.get(p).cloned().unwrap_or_default());
        let mut running = Vec::new();
        for (name, start) in stt_sim::registry::SIMS {
            let sim = start(stt_sim::SimConfig::new(keys_for(name), &tuning_for(name), catalog.clone())).await;
            running.push((
                Service::Stt,
                name.to_string(),
                sim.with_context(|| format!("starting the {name} STT simulator"))?,
            ));
        }
        for api in llm_sim::registry::SIMS {
            let name = api.name();
            let sim = llm_sim::registry::start(*api, keys_for(name), tuning_for(name)).await;
            running.push((
                Service::Llm,
                name.to_string(),
                sim.with_context(|| format!("starting the {name} LLM simulator"))?,
            ));
        }
        for (name, start) in tts_sim::registry::SIMS {
            let sim = start(keys_for(name), tuning_for(name)).await;
            running.push((
                Service::Tts,
                name.to_string(),
                sim.with_context(|| format!("starting the {name} TTS simulator"))?,
            ));
        }
        for (svc, p, sim) in running.iter_mut() {
            if t.sim_stall.iter().any(|s| *s == format!("{svc}.{p}")) {
                let stalled = simkit::stall_like(sim.as_ref()).await.context("starting a stalled simulator")?;
                tracing::info!(service = %svc, provider = %p, "simulator stalls: accepts and never answers");
                *sim = Box::new(stalled);
            }
        }
        Ok(Sims { running })
    }

    /// `service.provider` → base URL, the keys `--provider-url` and the resolver use.
    pub fn base_urls(&self) -> HashMap<String, Url> {
        self.running.iter().map(|(svc, p, sim)| (format!("{svc}.{p}"), sim.base_url())).collect()
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
    for p in simulated_providers() {
        keys.entry(p.to_string()).or_insert_with(|| vec!["sim-key".to_string()]);
    }
    let sims = Arc::new(Sims::start(args.calls.as_deref(), &keys, &args.tuning).await?);
    let carriers = carrier_sim::start(carrier_accounts(&args.carrier_accounts)?)
        .await
        .context("starting the carrier REST simulator")?;
    carriers.delay_replies(std::time::Duration::from_millis(args.carrier_delay_ms));
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
    line.insert("carrier".into(), carriers.base_url().to_string().trim_end_matches('/').to_string());
    println!("{}", serde_json::to_string(&line)?);
    tracing::info!(%control, "simulators running");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The accounts the carrier simulator accepts, from `--carrier-account CARRIER=JSON`.
fn carrier_accounts(specs: &[String]) -> anyhow::Result<carrier_sim::SimAccounts> {
    let mut accounts = carrier_sim::SimAccounts::default();
    for spec in specs {
        let (c, json) = spec.split_once('=').context("--carrier-account must be carrier=JSON")?;
        let v: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("--carrier-account {c}: not JSON"))?;
        let f = |k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("--carrier-account {c} needs {k}"));
        accounts = match c {
            "twilio" => accounts.twilio(f("accountSid")?, f("authToken")?),
            "telnyx" => accounts.telnyx(f("apiKey")?),
            "plivo" => accounts.plivo(f("authId")?, f("authToken")?),
            "vonage" => {
                let path = f("publicKeyFile")?;
                let pem = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                accounts.vonage(f("applicationId")?, pem)
            }
            other => anyhow::bail!("--carrier-account: unknown carrier {other:?}"),
        };
    }
    Ok(accounts)
}

async fn urls(State(s): State<Arc<Sims>>) -> Json<HashMap<String, Url>> {
    Json(s.base_urls())
}

/// Last 4 characters of the key of every connection or request, in arrival order, by provider
/// (all of a provider's simulators, STT before LLM before TTS).
async fn seen_keys(State(s): State<Arc<Sims>>) -> Json<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (_, p, sim) in &s.running {
        out.entry(p.clone()).or_default().extend(sim.seen_keys().iter().map(|k| last4(k)));
    }
    Json(out)
}

/// The messages of the OpenAI simulator's last request (barge-in truncation checks).
async fn last_request(State(s): State<Arc<Sims>>) -> Json<serde_json::Value> {
    let openai = s.running.iter().find(|(svc, p, _)| *svc == Service::Llm && p == "openai");
    Json(openai.and_then(|(_, _, sim)| sim.last_request()).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_providers_get_keys_their_adapters_can_sign_with() {
        for p in crate::server::AWS_PROVIDERS {
            let key = key_for(p, "sandbox-0f3a");
            let creds = aws::Credentials::parse(&key).unwrap_or_else(|e| panic!("{p}: {e:?}"));
            assert_eq!(creds.secret_access_key(), "sandbox-0f3a", "{p}");
            let id = creds.access_key_id();
            assert!(!id.to_ascii_lowercase().contains("0f3a"), "{p}: the id {id} gives the secret away");
            assert_eq!(id, format!("SIM{}", p.to_ascii_uppercase()));
        }
        assert_eq!(key_for("deepgram", "sandbox-0f3a"), "sandbox-0f3a");
    }
}
