//! Starting a browser under WebDriver with a recorded call as its microphone, per engine:
//!
//! - Chromium (Debian's `chromium` + `chromium-driver`) plays the file itself
//!   (`--use-file-for-fake-audio-capture`), from the moment the page opens the microphone.
//! - Firefox (Debian's `firefox-esr` + `geckodriver` from crates.io) has no such switch: it
//!   records from a private PulseAudio server whose default source is the monitor of a null
//!   sink, and the test plays the file into that sink with `paplay` once the call is opening.
//!
//! Every process started here is killed when its handle drops.

use crate::util::{free_port, Proc};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const FIREFOX: &str = "/usr/bin/firefox-esr";

/// A running WebDriver server, what the browser session must be asked for, and (Firefox) the
/// sound server its microphone listens to.
pub struct Driver {
    pub url: String,
    pub capabilities: Map<String, Value>,
    pub mic: Mic,
    _driver: Proc,
}

pub enum Mic {
    /// Chromium plays the file by itself.
    FakeCapture,
    /// Play `file` into the PulseAudio sink at `server` when the call opens.
    Pulse { server: String, file: PathBuf, _daemon: Proc, playing: std::sync::Mutex<Option<Proc>> },
}

impl Mic {
    /// Start speaking (Firefox); Chromium's fake capture started when the page opened it.
    pub fn speak(&self) {
        let Mic::Pulse { server, file, playing, .. } = self else { return };
        let mut playing = playing.lock().expect("mic lock");
        if playing.is_none() {
            let child = Command::new("paplay")
                .args(["--server", server, "--device", "mic"])
                .arg(file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn paplay (Debian's pulseaudio-utils)");
            *playing = Some(Proc { child });
        }
    }
}

fn require(bin: &Path, package: &str) {
    assert!(
        bin.exists(),
        "{} is missing: the browser tests need {package} (scripts/install-deps.sh installs it)",
        bin.display()
    );
}

/// `geckodriver`: `$GECKODRIVER` if set, else the first on the PATH, in the roots
/// `scripts/install-deps.sh` installs into, or in cargo's bin folder.
fn geckodriver() -> PathBuf {
    if let Some(explicit) = std::env::var_os("GECKODRIVER") {
        return PathBuf::from(explicit);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")))
        .map(|c| c.join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/local/bin")])
        .chain(home.map(|h| h.join(".local/bin")))
        .chain(cargo_bin)
        .map(|dir| dir.join("geckodriver"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("geckodriver"))
}

/// Start `program --port=PORT …` and wait until its WebDriver status answers.
fn webdriver(program: &Path, args: &[String], env: &[(&str, &str)]) -> (String, Proc) {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let driver = Proc { child };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || crate::util::http_get(&format!("{url}/status")).0 != 200
    {
        assert!(Instant::now() < deadline, "{} did not come up on {url}", program.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    (url, driver)
}

pub fn start(engine: Engine, mic: &Path) -> Driver {
    match engine {
        Engine::Chromium => chromium(mic),
        Engine::Firefox => firefox(mic),
    }
}

fn chromium(mic: &Path) -> Driver {
    require(Path::new(CHROMIUM), "Debian's chromium");
    require(Path::new(CHROMEDRIVER), "Debian's chromium-driver");
    let (url, driver) = webdriver(Path::new(CHROMEDRIVER), &[], &[]);
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
    Driver { url, capabilities: object(caps), mic: Mic::FakeCapture, _driver: driver }
}

fn firefox(mic: &Path) -> Driver {
    require(Path::new(FIREFOX), "Debian's firefox-esr");
    let gecko = geckodriver();
    require(&gecko, "geckodriver (`cargo install geckodriver`)");
    let (server, daemon) = pulse();
    // Firefox inherits geckodriver's environment: its sound goes to the private server.
    let (url, driver) = webdriver(&gecko, &[], &[("PULSE_SERVER", &server)]);
    let prefs = json!({
        // The microphone without a permission prompt, and the real (PulseAudio) one, not a tone.
        "media.navigator.permission.disabled": true,
        "media.navigator.streams.fake": false,
        // Audible playback without a click, like Chromium's autoplay switch.
        "media.autoplay.default": 0,
        "media.autoplay.blocking_policy": 0,
        "media.autoplay.block-webaudio": false,
        // Read the profile's userChrome.css (below).
        "toolkit.legacyUserProfileCustomizations.stylesheets": true,
    });
    let caps = json!({
        "browserName": "firefox",
        "moz:firefoxOptions": {
            "binary": FIREFOX,
            "args": ["-headless", "-profile", profile()],
            "prefs": prefs,
        },
    });
    let file = mic.to_path_buf();
    let mic = Mic::Pulse { server, file, _daemon: daemon, playing: Default::default() };
    Driver { url, capabilities: object(caps), mic, _driver: driver }
}

/// A fresh profile whose browser chrome has no minimum width: Firefox's toolbars otherwise
/// keep the window at least 500 px wide, wider than the 375 px phone the pages must fit.
fn profile() -> String {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("firefox-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(dir.join("chrome")).expect("profile dir");
    let css = ":root, #main-window, #navigator-toolbox, #nav-bar, toolbar { min-width: 0 !important; }\n";
    std::fs::write(dir.join("chrome/userChrome.css"), css).expect("userChrome.css");
    dir.display().to_string()
}

/// A private PulseAudio server (its own socket, no D-Bus, no session) with two null sinks:
/// `mic`, whose monitor is the default source (what is played into it is what the browser
/// records), and `speaker`, the default sink the browser plays the agent into.
fn pulse() -> (String, Proc) {
    let pulseaudio = Path::new("/usr/bin/pulseaudio");
    require(pulseaudio, "Debian's pulseaudio");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pulse-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("pulse dir");
    let socket = dir.join("native");
    let child = Command::new(pulseaudio)
        .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes"])
        .arg(format!("--load=module-native-protocol-unix socket={} auth-anonymous=1", socket.display()))
        .arg("--load=module-null-sink sink_name=mic rate=48000 channels=1")
        .arg("--load=module-null-sink sink_name=speaker rate=48000 channels=2")
        .env("HOME", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pulseaudio");
    let daemon = Proc { child };
    let server = format!("unix:{}", socket.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    let pactl = |args: &[&str]| Command::new("pactl").arg("--server").arg(&server).args(args).output().expect("pactl");
    loop {
        // The agent plays into `speaker`, never into `mic`: no echo of the agent into the caller.
        let _ = (pactl(&["set-default-sink", "speaker"]), pactl(&["set-default-source", "mic.monitor"]));
        let info = pactl(&["info"]);
        let text = String::from_utf8_lossy(&info.stdout);
        if text.contains("Default Source: mic.monitor") && text.contains("Default Sink: speaker") {
            return (server, daemon);
        }
        assert!(Instant::now() < deadline, "PulseAudio did not come up: {}", String::from_utf8_lossy(&info.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
