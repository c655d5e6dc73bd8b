//! The web pages in a real headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by scripts/install-deps.sh), with a recorded call as the
//! microphone. A missing Chromium or ChromeDriver fails these tests; they never skip.
//! Screenshots of each step go to `target/browser-screenshots/`.
//!
//! Run one at a time (`--test-threads=1` is not needed for correctness, but each browser is
//! ~425 MiB and 3 CPU-seconds): `cargo test --test browser`.

mod util;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session on it, with the microphone playing `mic`.
struct Browser {
    client: Client,
    _driver: Proc,
    shots: PathBuf,
    test: &'static str,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `asset` with `pad_s` seconds of silence in front, as 16 kHz mono s16: the fake microphone
/// starts when `getUserMedia` opens it, before the call is up, so the first word needs room.
fn padded_fixture(asset_name: &str, pad_s: f64) -> PathBuf {
    let mut r = hound::WavReader::open(asset(asset_name)).expect("asset wav");
    let spec = r.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 16000, 16), "{asset_name}");
    let samples: Vec<i16> = r.samples::<i16>().collect::<Result<_, _>>().expect("samples");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let path = dir.join(format!("padded-{asset_name}"));
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
    async fn start(test: &'static str, mic: &Path) -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver (scripts/install-deps.sh)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let driver = Proc { child };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_get(&format!("{url}/status")).0 != 200 {
            assert!(Instant::now() < deadline, "chromedriver did not come up on {url}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            &format!("--use-file-for-fake-audio-capture={}%noloop", mic.display()),
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,900",
        ];
        let caps = json!({"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}});
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a new chromium session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("browser-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser { client, _driver: driver, shots, test }
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

    async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.expect(css).text().await.expect("text")
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.expect(css).len()
    }

    async fn close(self) {
        self.client.close().await.expect("close the session");
    }
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `?agent=default&autostart=1` starts a call without a click; the caller's words come back as
/// a final transcript line, the agent's reply is shown and its audio plays (the analyser after
/// the playback queue sees a level); Stop ends the call with usage lines and a total.
#[tokio::test(flavor = "multi_thread")]
async fn talk_page_hears_the_caller_and_plays_the_agent() {
    let server = Server::sandbox();
    let b = Browser::start("talk", &padded_fixture("simple.wav", 1.5)).await;
    b.client.goto(&format!("{}/talk?agent=default&autostart=1", server.url)).await.expect("open /talk");
    let r = b
        .wait_for("the agent's reply played", 40, |r| {
            n(&r["turnsDone"]) >= 1.0 && n(&r["framesPlayed"]) >= 25.0 && !r["finals"].as_array().is_some_and(Vec::is_empty)
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
    assert_eq!(r["endReason"], "hangup", "{r:#}");
    let billed: Vec<&str> = r["usage"].as_array().expect("usage").iter().filter_map(|u| u["billed_to"].as_str()).collect();
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
#[tokio::test(flavor = "multi_thread")]
async fn talk_page_barge_in_clears_playback() {
    let server = Server::sandbox();
    let b = Browser::start("barge-in", &padded_fixture("barge_in.wav", 1.5)).await;
    b.client.goto(&format!("{}/talk", server.url)).await.expect("open /talk");
    b.shot("0-ready").await;
    b.client.find(Locator::Id("start")).await.expect("#start").click().await.expect("click start");
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
