//! A small W3C WebDriver client for headless Chromium, for the dashboard's browser
//! tests and `ecosim bench dashboard`: Debian's `chromium` driven through its
//! `chromedriver` (packages `chromium` and `chromium-driver`; `.ci/run` installs
//! them), over plain HTTP and JSON with the client the harness already has.
//!
//! Only what the tests need: open a page, find, click and type, run a script, wait
//! for a condition, take a screenshot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine;
use serde_json::{Value, json};

/// Where Debian installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian installs its driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key a W3C element reference is under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser and its driver are installed.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// A headless Chromium session; closed (browser and driver) on drop.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver_url: String,
    driver: Child,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("session", &self.session).finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts `chromedriver` on a free port and a headless Chromium session with a
    /// window of `width` x `height` and a fresh profile.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        if !available() {
            bail!(
                "headless browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{driver_url}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not become ready in 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("ecosim-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        // The flags a closed network needs (no background connections) and a root
        // user needs (no sandbox).
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let mut browser = Self { http, session: String::new(), driver_url, driver, profile };
        let v = browser.request(reqwest::Method::POST, "/session", Some(caps)).await?;
        browser.session = v["sessionId"].as_str().context("no session id")?.to_owned();
        Ok(browser)
    }

    async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.driver_url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let v: Value = res.json().await?;
        if !status.is_success() {
            bail!("webdriver {path}: {status} {}", v["value"]["message"].as_str().unwrap_or(""));
        }
        Ok(v["value"].clone())
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.request(reqwest::Method::POST, &self.at("/url"), Some(json!({"url": url}))).await?;
        Ok(())
    }

    /// Runs `script` (a function body: `return ...`) with `args`; its result.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.request(reqwest::Method::POST, &self.at("/execute/sync"), Some(json!({"script": script, "args": args})))
            .await
    }

    /// Waits up to `limit` for `condition` (a JS expression) to be truthy; `what`
    /// names it in the error, with the page's text at the time.
    pub async fn wait_for(&self, condition: &str, limit: Duration, what: &str) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let v = self.script(&format!("return ({condition});"), vec![]).await?;
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return Ok(v);
            }
            if started.elapsed() > limit {
                let text = self.script("return document.body.innerText;", vec![]).await.unwrap_or_default();
                bail!("waited {limit:?} for {what}; the page shows:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn element(&self, css: &str) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let found = self
                .request(
                    reqwest::Method::POST,
                    &self.at("/element"),
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            match found {
                Ok(v) => return Ok(v[ELEMENT].as_str().with_context(|| format!("no element id in {v}"))?.to_owned()),
                Err(e) if started.elapsed() > Duration::from_secs(10) => return Err(e.context(format!("no {css}"))),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Clicks the element `css` selects, as a user does: if the page redrew it
    /// between finding and clicking (a stale element), finds it again; if it is not
    /// clickable yet (a tab still being shown: "element not interactable", or covered
    /// for a moment: "click intercepted"), waits for it, up to 5 s, as a user would.
    /// CI once failed on a click that came right after the tab's own.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let id = self.element(css).await?;
            match self.request(reqwest::Method::POST, &self.at(&format!("/element/{id}/click")), Some(json!({}))).await
            {
                Err(e) if started.elapsed() < Duration::from_secs(5) && not_yet_clickable(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Types `text` into the field `css` selects (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let id = self.element(css).await?;
        self.request(reqwest::Method::POST, &self.at(&format!("/element/{id}/clear")), Some(json!({}))).await?;
        self.request(reqwest::Method::POST, &self.at(&format!("/element/{id}/value")), Some(json!({"text": text})))
            .await?;
        Ok(())
    }

    /// Saves a PNG of the window to `file` (its folder created).
    pub async fn screenshot(&self, file: &Path) -> anyhow::Result<()> {
        let v = self.request(reqwest::Method::GET, &self.at("/screenshot"), None).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().context("no screenshot")?)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, png)?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (the driver closes its browser), then the driver; the
        // profile folder goes with both. Plain blocking HTTP: drop cannot await.
        if !self.session.is_empty()
            && let Some(addr) = self.driver_url.strip_prefix("http://")
            && let Ok(mut s) = std::net::TcpStream::connect(addr)
        {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let request =
                format!("DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n", self.session);
            if s.write_all(request.as_bytes()).is_ok() {
                // Until the answer is complete (its headers and Content-Length bytes):
                // the driver may keep the connection open whatever the request said.
                let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A click refused for a moment (the element redrawn, not shown yet, or covered),
/// not for good.
fn not_yet_clickable(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    ["stale element", "not interactable", "click intercepted"].iter().any(|m| text.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_is_tried_again_only_while_the_refusal_is_a_passing_one() {
        let refused = |m: &str| anyhow::anyhow!("webdriver /session/s/element/e/click: 400 Bad Request {m}");
        assert!(not_yet_clickable(&refused("element not interactable")));
        assert!(not_yet_clickable(&refused("stale element reference: stale element not found")));
        assert!(not_yet_clickable(&refused("element click intercepted: Element <button> is not clickable")));
        assert!(!not_yet_clickable(&refused("no such element: Unable to locate element")));
        assert!(!not_yet_clickable(&refused("invalid session id")));
    }
}
