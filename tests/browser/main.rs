//! The web pages in real headless browsers, Chromium and Firefox, driven over WebDriver, with a
//! recorded call as the microphone (how each browser is started and fed: `launch.rs`). Every
//! test runs in both. A missing browser or driver fails these tests; they never skip.
//! Screenshots of each step go to `target/browser-screenshots/`.
//!
//! Browsers run one at a time (a lock in the test binary), so `cargo test --test browser`
//! needs no `--test-threads=1`.

mod launch;
#[path = "../util/mod.rs"]
mod util;

use fantoccini::{Client, ClientBuilder, Locator};
use launch::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use util::*;

/// One browser at a time: each is ~425 MiB and real-time audio; several at once on 2 cores
/// starve the fake microphone and the playback clock, and the recognizer hears a stutter.
fn one_at_a_time() -> Arc<tokio::sync::Mutex<()>> {
    static LOCK: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(Default::default).clone()
}

/// A WebDriver server and one browser session on it, with the microphone playing `mic`.
struct Browser {
    client: Client,
    driver: launch::Driver,
    shots: PathBuf,
    test: String,
    /// Last, so it is released after the driver (and its browser) are gone.
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// `asset` with `pad_s` seconds of silence in front, as 16 kHz mono s16: the microphone
/// starts when `getUserMedia` opens it, before the call is up, so the first word needs room.
fn padded_fixture(asset_name: &str, pad_s: f64) -> PathBuf {
    let mut r = hound::WavReader::open(asset(asset_name)).expect("asset wav");
    let spec = r.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 16000, 16), "{asset_name}");
    let samples: Vec<i16> = r.samples::<i16>().collect::<Result<_, _>>().expect("samples");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let path = dir.join(format!("padded-{pad_s}-{asset_name}"));
    let mut w = hound::WavWriter::create(&path, spec).expect("fixture");
    for _ in 0..(pad_s * 16000.0) as usize {
        w.write_sample(0i16).expect("write");
    }
    for s in samples {
        w.write_sample(s).expect("write");
    }
    w.finalize().expect("finalize");
    path
}

impl Browser {
    async fn start(engine: Engine, test: &str, mic: &Path) -> Browser {
        let turn = one_at_a_time().lock_owned().await;
        let driver = launch::start(engine, mic);
        let client = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(driver.capabilities.clone())
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("a new {engine:?} session: {e}"));
        let test = format!("{test}-{}", format!("{engine:?}").to_lowercase());
        let shots =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("browser-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        // Last run's pictures of this test (a failure's among them) would mislead.
        for entry in std::fs::read_dir(&shots).expect("screenshot dir").flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("{test}-")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let b = Browser { client, _turn: turn, driver, shots, test };
        b.viewport(1280, 900).await;
        b
    }

    async fn viewport(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("window size");
    }

    /// Open a page that places a call at once (`autostart`), then speak.
    async fn open_call(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.speak_once_live().await;
    }

    /// Firefox's recording starts once the call is up, so a slow start (a loaded machine)
    /// cannot swallow the first words; Chromium's started when the page opened the microphone.
    async fn speak_once_live(&self) {
        if let launch::Mic::Pulse { .. } = self.driver.mic {
            self.wait_for("the call to be live", 30, |r| r["state"] == "live").await;
            self.driver.mic.speak();
        }
    }

    async fn shot(&self, step: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{}-{step}.png", self.test));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
    }

    async fn result(&self) -> Value {
        self.client.execute("return window.result", vec![]).await.expect("window.result")
    }

    /// Poll `window.result` until `done(result)`; screenshot and fail with the result on timeout.
    async fn wait_for(&self, what: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.result().await;
            if done(&r) {
                return r;
            }
            if Instant::now() > deadline || r["state"] == "error" {
                self.shot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                panic!("timed out waiting for {what}: {r:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Read through a script rather than an element handle: the console re-renders its tables,
    /// which leaves handles stale.
    async fn read(&self, css: &str, attr: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e ? (arguments[1] ? e.getAttribute(arguments[1]) : e.innerText) : undefined";
        self.el(css).await;
        let v = self.client.execute(script, vec![json!(css), json!(attr)]).await.expect("script");
        v.as_str().map(str::to_string)
    }

    async fn text(&self, css: &str) -> String {
        self.read(css, "").await.unwrap_or_default()
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.read(css, name).await
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.expect(css).len()
    }

    /// The element once it exists (pages render after their API calls answer).
    async fn el(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                self.shot(&format!("missing-{}", css.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))).await;
                panic!("no {css}: {e}");
            }
        }
    }

    async fn click(&self, css: &str) {
        self.el(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    async fn select(&self, css: &str, value: &str) {
        self.el(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Wait until the element's text satisfies `pred`; its text.
    async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text(css).await;
            if pred(&t) {
                return t;
            }
            if Instant::now() > deadline {
                self.shot(&format!("text-{}", css.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))).await;
                panic!("{css} never matched; last text: {t:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(self) {
        self.client.close().await.expect("close the session");
    }
}

/// The org's own Deepgram key (the simulator accepts it) and a wrong one.
const OWN_DG_KEY: &str = "org-own-dg-key-7777";
const WRONG_DG_KEY: &str = "org-wrong-dg-key-0000";

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `?agent=default&autostart=1` starts a call without a click; the caller's words come back as
/// a final transcript line, the agent's reply is shown and its audio plays (the analyser after
/// the playback queue sees a level); Stop ends the call with usage lines and a total.
async fn talk_page_hears_the_caller_and_plays_the_agent(engine: Engine) {
    let server = Server::sandbox();
    let b = Browser::start(engine, "talk", &padded_fixture("simple.wav", 1.5)).await;
    b.open_call(&format!("{}/talk?agent=default&autostart=1", server.url)).await;
    let r = b
        .wait_for("the agent's reply played", 40, |r| {
            n(&r["turnsDone"]) >= 1.0
                && n(&r["framesPlayed"]) >= 25.0
                && !r["finals"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    b.shot("1-reply").await;
    assert_eq!(r["finals"], json!(["Hello, what are your opening hours?"]), "{r:#}");
    assert!(r["agentText"].as_array().is_some_and(|a| !a.is_empty()), "{r:#}");
    assert!(n(&r["framesSent"]) > 50.0, "the microphone streamed: {r:#}");
    assert_eq!(r["contextState"], "running");
    assert!(n(&r["peakLevel"]) > 0.01, "the reply was audible to the analyser: {r:#}");
    assert!(b.text(".lines .caller").await.contains("opening hours"));
    assert!(!b.text(".lines .agent").await.is_empty());

    b.client.find(Locator::Id("stop")).await.expect("#stop").click().await.expect("click stop");
    let r = b.wait_for("the call ended", 20, |r| r["done"] == true).await;
    b.shot("2-ended").await;
    assert_eq!(r["endReason"], "hangup", "{r:#}\nserver log: {}", server.log.display());
    let billed: Vec<&str> =
        r["usage"].as_array().expect("usage").iter().filter_map(|u| u["billed_to"].as_str()).collect();
    assert!(!billed.is_empty() && billed.iter().all(|b| *b == "managed"), "{r:#}");
    assert!(n(&r["totalMicros"]) > 0.0);
    assert!(b.text("#total").await.starts_with("$0.0"), "total shown");
    assert_eq!(b.count("#usage tbody tr").await, billed.len());
    assert!(b.text("#status").await.contains("hangup"));
    // The call is closed and billed on the server too.
    let sid = r["sessionId"].as_str().expect("session id");
    assert_eq!(server.get(&format!("/api/sessions/{sid}"))["status"], "closed");
    b.close().await;
}

/// Clicking Start with the barge-in recording: the caller talks over the long story; the page
/// drops the queued agent audio at once on `clear`, marks the cut reply and shows the barge-in,
/// then plays the next reply.
async fn talk_page_barge_in_clears_playback(engine: Engine) {
    let server = Server::sandbox();
    let b = Browser::start(engine, "barge-in", &padded_fixture("barge_in.wav", 1.5)).await;
    // Firefox's echo canceller, with no echo to cancel (the agent plays into another device),
    // clips the first syllable of the barge-in, which the simulator then hears as another
    // phrase; the recording is a clean voice, so its processing is off.
    let raw = if engine == Engine::Firefox { "?mic=raw" } else { "" };
    b.client.goto(&format!("{}/talk{raw}", server.url)).await.expect("open /talk");
    b.shot("0-ready").await;
    b.client.find(Locator::Id("start")).await.expect("#start").click().await.expect("click start");
    b.speak_once_live().await;
    let r = b.wait_for("the barge-in", 40, |r| n(&r["bargeIns"]) >= 1.0 && n(&r["clears"]) >= 1.0).await;
    b.shot("1-barge-in").await;
    assert!(n(&r["framesPlayed"]) > 10.0, "the story was playing: {r:#}");
    assert!(n(&r["droppedOnClear"]) >= 1.0, "queued audio was dropped on clear: {r:#}");
    assert_eq!(b.count(".lines .barge").await, 1);
    assert_eq!(b.count(".lines .agent.cut").await, 1);
    assert!(!b.text(".lines .agent.cut del").await.is_empty(), "the unplayed rest of the story is struck through");
    let r = b.wait_for("the answer after the barge-in", 40, |r| n(&r["turnsDone"]) >= 1.0).await;
    assert_eq!(r["finals"].as_array().map(Vec::len), Some(2), "{r:#}");
    b.client.find(Locator::Id("stop")).await.expect("#stop").click().await.expect("click stop");
    b.wait_for("the call ended", 20, |r| r["done"] == true).await;
    b.shot("2-ended").await;
    b.close().await;
}

/// The console, signed in with an org key: a wrong key checks red with the provider's reason,
/// the right one green; BYOK on with the key in the STT slot; a new agent; a call to it from the
/// talk page (a client token minted with the key, which never enters a URL); the call's usage
/// lines show `byok` for STT in the talk page and in the console's call details.
async fn console_keys_byok_agent_and_a_byok_call(engine: Engine) {
    let p = util::tenant::Prod::start(&[("deepgram", OWN_DG_KEY)]);
    let b = Browser::start(engine, "console", &padded_fixture("simple.wav", 1.5)).await;
    b.client.goto(&format!("{}/console", p.server.url)).await.expect("open /console");
    b.fill("#credential", &p.key).await;
    b.click("#signin button[type=submit]").await;
    let balance = b.text("#balance").await;
    for row in ["Credits left", "Wallet", "Held by live calls", "Available"] {
        assert!(balance.contains(row), "{balance}");
    }
    b.shot("1-signed-in").await;
    let url = b.client.current_url().await.expect("url");
    assert!(!url.as_str().contains(&p.key), "the key is not in the URL: {url}");

    // A wrong key: saved (saving never validates), then Check says red, with the reason.
    b.click("button[data-section=keys]").await;
    b.select("#key-provider", "deepgram").await;
    b.fill("#key-secret", WRONG_DG_KEY).await;
    b.click("#key-save").await;
    b.wait_text("#keys-msg", |t| t.starts_with("Saved deepgram")).await;
    assert!(b.text("#keys tbody").await.contains("…0000"), "last 4 only");
    assert!(!b.text("#app").await.contains(WRONG_DG_KEY), "the key is never shown back");
    b.click("#keys tr[data-provider=deepgram] button.check").await;
    let red = b.wait_text("#keys tr[data-provider=deepgram] .check-result", |t| t != "not checked").await;
    assert_eq!(
        b.attr("#keys tr[data-provider=deepgram] .check-result", "data-status").await.as_deref(),
        Some("error"),
        "{red}"
    );
    assert!(red.contains("unauthorized") || red.contains("Unauthorized") || red.contains("key"), "a reason: {red}");
    b.shot("2-wrong-key-red").await;

    // A JSON credential (AWS) missing a field is refused, naming the field.
    b.select("#key-provider", "bedrock").await;
    b.fill("#key-secret", r#"{"accessKeyId": "AKIA0000"}"#).await;
    b.click("#key-save").await;
    let refused = b.wait_text("#keys-msg", |t| t.starts_with("bad_credentials")).await;
    assert!(refused.contains("secretAccessKey"), "{refused}");

    // The right key replaces it (same provider and name); Check all says green.
    b.click("#keys tr[data-provider=deepgram] button.replace").await;
    b.fill("#key-secret", OWN_DG_KEY).await;
    b.click("#key-save").await;
    b.wait_text("#keys-msg", |t| t.contains("…7777")).await;
    assert_eq!(b.count("#keys tbody tr").await, 1, "replaced, not added");
    b.click("#check-all").await;
    b.wait_text("#keys-msg", |t| t.contains("all OK")).await;
    assert_eq!(b.attr("#keys tr[data-provider=deepgram] .check-result", "data-status").await.as_deref(), Some("ok"));
    b.shot("3-good-key-green").await;

    // BYOK on, the key in the STT slot.
    b.click("button[data-section=byok]").await;
    let cred_id = util::tenant::req(&p.server, "GET", "/api/credentials", None, &p.key, 200)["credentials"][0]["id"]
        .as_str()
        .expect("credential id")
        .to_string();
    b.click("#byok-toggle").await;
    b.select("#slot-stt", &cred_id).await;
    b.click("#byok-save").await;
    b.wait_text("#byok-msg", |t| t.contains("using your own keys")).await;
    b.shot("4-byok-on").await;

    // A new agent from the pickers.
    b.click("button[data-section=agents]").await;
    b.select("#agent-stt", "deepgram/nova-3").await;
    b.select("#agent-llm", "openai/gpt-4o-mini").await;
    b.select("#agent-tts", "elevenlabs/eleven_flash_v2_5").await;
    b.fill("#agent-voice", "v1").await;
    // A model the org cannot use says why: a BYOK-only provider names the missing key.
    let reasons: Value = b
        .client
        .execute("return [...document.querySelectorAll('#agent-llm option')].map(o => o.textContent)", vec![])
        .await
        .expect("options");
    assert!(reasons.to_string().contains("PROVIDER_KEY_REQUIRED: add your"), "{reasons}");
    b.click("#agent-save").await;
    b.wait_text("#agent-msg", |t| t.starts_with("Saved agent")).await;
    let agent = b.attr("#agent-msg", "data-agent-id").await.expect("agent id");
    b.el(&format!("#agents-list li[data-id={agent}]")).await;
    b.shot("5-agent-created").await;
    // Edit it: a new prompt, saved through PUT.
    b.click(&format!("#agents-list li[data-id={agent}] button")).await;
    b.wait_text("#agent-form legend", |t| t.contains(&agent)).await;
    b.fill("#agent-prompt", "Answer in one short sentence.").await;
    b.click("#agent-save").await;
    b.wait_text("#agent-msg", |t| t == format!("Saved agent {agent}.")).await;
    let saved = util::tenant::req(&p.server, "GET", &format!("/api/agents/{agent}"), None, &p.key, 200);
    assert_eq!(saved["agent"]["prompt"], "Answer in one short sentence.");

    // Route a number to it.
    b.click("button[data-section=numbers]").await;
    b.fill("#number", "+15550001111").await;
    b.select("#number-agent", &agent).await;
    b.click("#number-form button[type=submit]").await;
    b.wait_text("#numbers tbody", |t| t.contains("+15550001111") && t.contains(&agent)).await;

    // A call to it from the talk page, in the same tab (the key is in its session storage).
    b.open_call(&format!("{}/talk?agent={agent}&autostart=1", p.server.url)).await;
    b.wait_for("the agent's reply", 40, |r| n(&r["turnsDone"]) >= 1.0).await;
    b.click("#stop").await;
    let r = b.wait_for("the call ended", 20, |r| r["done"] == true).await;
    b.shot("6-call-ended").await;
    let usage = r["usage"].as_array().expect("usage");
    let billed = |svc: &str| -> Vec<String> {
        usage
            .iter()
            .filter(|u| u["service"] == svc)
            .map(|u| u["billed_to"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(!billed("stt").is_empty() && billed("stt").iter().all(|b| b == "byok"), "{r:#}");
    assert!(billed("llm").iter().all(|b| b == "managed"), "{r:#}");
    assert!(b.count("#usage tr[data-billed-to=byok]").await >= 1);

    // The console's call details show the same lines.
    b.client.goto(&format!("{}/console", p.server.url)).await.expect("open /console");
    b.click("button[data-section=calls]").await;
    b.click("#calls tbody tr:first-child button").await;
    b.el("#call-detail .usage").await;
    let stt_rows = b.count("#call-detail tr[data-service=stt]").await;
    assert!(stt_rows > 0);
    assert_eq!(
        b.count("#call-detail tr[data-service=stt][data-billed-to=byok]").await,
        stt_rows,
        "every STT line is byok"
    );
    assert!(b.count("#spend-chart .bar-row").await >= 2, "spend by service and payer");
    // …and what was said: the caller's words as the talk page heard them, and the agent's reply.
    let said = b.text("#call-transcript").await;
    for heard in r["finals"].as_array().expect("finals") {
        assert!(said.contains(heard.as_str().unwrap_or("?")), "{heard} is in the stored transcript: {said}");
    }
    assert!(b.count("#call-transcript li.agent").await >= 1, "the agent's line: {said}");
    b.shot("7-call-details").await;

    // Signed in, every section still fits a phone: wide tables scroll inside their own box.
    b.viewport(375, 812).await;
    for section in ["balance", "keys", "byok", "agents", "numbers", "calls"] {
        b.click(&format!("button[data-section={section}]")).await;
        b.el(&format!("#section[data-ready={section}]")).await;
        let fit: Value = b
            .client
            .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
            .await
            .expect("widths");
        if n(&fit[1]) > n(&fit[0]) {
            b.shot(&format!("phone-{section}")).await;
        }
        assert!(n(&fit[1]) <= n(&fit[0]), "{section} scrolls sideways at 375 px: {fit}");
    }
    b.shot("8-phone-calls").await;
    b.close().await;
}

/// The admin console: turning `managed` on for a provider the server holds no key for is
/// refused, and the refusal is shown.
async fn console_admin_shows_a_managed_refusal(engine: Engine) {
    let p = util::tenant::Prod::start(&[]);
    let b = Browser::start(engine, "admin", &padded_fixture("simple.wav", 0.0)).await;
    b.client.goto(&format!("{}/console", p.server.url)).await.expect("open /console");
    b.fill("#credential", util::tenant::ADMIN).await;
    b.click("#signin button[type=submit]").await;
    b.el("#rates tbody").await;
    b.el(&format!("#orgs tr[data-org={}]", p.org)).await;
    b.el("#plans tr[data-plan=free]").await;
    b.el("#plans tr[data-plan=pro]").await;
    b.shot("1-admin").await;
    let cartesia = b.el("#managed-tts-cartesia").await;
    assert_eq!(cartesia.prop("checked").await.expect("prop").as_deref(), Some("false"));
    cartesia.click().await.expect("click");
    let msg = b.wait_text("#rates-msg", |t| !t.is_empty()).await;
    assert!(msg.starts_with("managed_key_missing"), "{msg}");
    b.shot("2-managed-refused").await;
    b.fill("#org-name", "globex").await;
    b.click("#org-name ~ button").await;
    let key = b.text("#new-org-key").await;
    assert!(key.starts_with("sk_"), "{key}");
    b.wait_text("#orgs tbody", |t| t.contains("globex")).await;
    assert!(!b.text("#orgs").await.contains(&key), "the list never shows a key");
    b.close().await;
}

/// Each page fits a 375 px phone screen (no sideways scrolling; wide tables scroll in their own
/// box) and its controls are real buttons, inputs and labels a keyboard reaches.
async fn pages_fit_a_phone_and_are_keyboard_reachable(engine: Engine) {
    let server = Server::sandbox();
    let b = Browser::start(engine, "phone", &padded_fixture("simple.wav", 0.0)).await;
    b.viewport(375, 812).await;
    for (page, ready) in [("", ".cards"), ("talk", "#start"), ("console", "#credential")] {
        b.client.goto(&format!("{}/{page}", server.url)).await.expect("open");
        b.el(ready).await;
        let fit: Value = b
            .client
            .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
            .await
            .expect("widths");
        assert!(n(&fit[0]) <= 400.0, "the viewport is a phone's: {fit}");
        assert!(n(&fit[1]) <= n(&fit[0]), "/{page} scrolls sideways at 375 px: {fit}");
        // Every input has a label; nothing clickable is a bare div.
        let unlabelled: Value = b
            .client
            .execute(
                "return [...document.querySelectorAll('input, select, textarea')].filter(i => !i.labels || i.labels.length === 0).map(i => i.id)",
                vec![],
            )
            .await
            .expect("labels");
        assert_eq!(unlabelled, json!([]), "/{page}");
        b.shot(if page.is_empty() { "index" } else { page }).await;
    }
    // Keyboard only: Tab to the agent field, then to Start, and Enter starts the call.
    b.client.goto(&format!("{}/talk", server.url)).await.expect("open");
    b.el("#agent").await.send_keys("\u{E004}").await.expect("tab");
    let focused: Value = b.client.execute("return document.activeElement.id", vec![]).await.expect("focus");
    assert_eq!(focused, "start", "Tab from the agent field reaches Start");
    b.client.active_element().await.expect("focused").send_keys("\u{E007}").await.expect("enter");
    b.wait_for("a call started from the keyboard", 20, |r| r["state"] == "live").await;
    b.click("#stop").await;
    b.wait_for("the call ended", 20, |r| r["done"] == true).await;
    b.close().await;
}

/// Every page and asset carries the security headers; unknown assets are the API's JSON 404.
#[tokio::test]
async fn pages_carry_security_headers() {
    let server = Server::sandbox();
    for path in ["/", "/talk", "/console", "/assets/talk.js", "/assets/client/index.js"] {
        let resp = reqwest::get(format!("{}{path}", server.url)).await.expect("GET");
        assert_eq!(resp.status(), 200, "{path}");
        let h = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let csp = h("content-security-policy");
        assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("referrer-policy"), "no-referrer");
        let want = if path.ends_with(".js") { "text/javascript" } else { "text/html" };
        assert!(h("content-type").starts_with(want), "{path}: {}", h("content-type"));
        let body = resp.text().await.expect("body");
        // No inline script: every <script> has a src (the CSP would block it anyway).
        assert!(!body.contains("<script>") && !body.contains("<script type=\"module\">"), "{path}");
    }
    let (status, body) = http_get(&format!("{}/assets/nope.js", server.url));
    assert_eq!(status, 404);
    assert!(body.contains("not_found"), "{body}");
}

/// Each browser test runs in Chromium and in Firefox.
macro_rules! in_both_browsers {
    ($($test:ident),* $(,)?) => {
        mod chromium {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Engine::Chromium).await;
                }
            )*
        }
        mod firefox {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Engine::Firefox).await;
                }
            )*
        }
    };
}

in_both_browsers!(
    talk_page_hears_the_caller_and_plays_the_agent,
    talk_page_barge_in_clears_playback,
    console_keys_byok_agent_and_a_byok_call,
    console_admin_shows_a_managed_refusal,
    pages_fit_a_phone_and_are_keyboard_reachable,
);
