//! A virtual Immuni app: what a citizen's phone sends to the Immuni backend.
//!
//! It generates a valid OTP, computes the hashes the app sends as bearer tokens
//! (`sha256(otp)`, `sha256("CUN-" + cun)`), sends Immuni's headers, pads requests
//! with random hex, generates a realistic set of Temporary Exposure Keys (one per day
//! for the last 14 days, aligned to 144 intervals), and sends dummy traffic when
//! asked. Tests and scenarios drive Immuni through it.

use base64::Engine;
use ecosim_domain::codes::{CardLast8, Cun, Otp, sha256_hex};
use ecosim_domain::rng::SeededRng;
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};

/// What the backend answered.
#[derive(Debug, Clone, PartialEq)]
pub struct AppAnswer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`Null` when empty, as on 204).
    pub body: Value,
    /// `Cache-Control`, if sent.
    pub cache_control: Option<String>,
    /// The simulator's `X-Ecosim-Detail`, if sent.
    pub detail: Option<String>,
    /// The simulator's `Ecosim-Warning`, if sent: what it did beyond its answer
    /// (e.g. keys of an inconsistent batch dropped behind a 204).
    pub warning: Option<String>,
}

impl AppAnswer {
    /// The Immuni `error_code`, if the body has one.
    pub fn error_code(&self) -> Option<u64> {
        self.body["error_code"].as_u64()
    }
}

/// A citizen's Immuni app.
#[derive(Debug)]
pub struct VirtualApp {
    http: reqwest::Client,
    immuni: String,
    rng: SeededRng,
}

impl VirtualApp {
    /// An app talking to the Immuni backend at `immuni_url`, its randomness from `seed`.
    pub fn new(immuni_url: &str, seed: u64) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_idle_timeout(ecosim_core::client::POOL_IDLE)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            immuni: immuni_url.trim_end_matches('/').to_owned(),
            rng: SeededRng::derive(seed, "virtual-app"),
        }
    }

    /// A new OTP, as the app shows it to be dictated.
    pub fn new_otp(&mut self) -> Otp {
        Otp::generate(&mut self.rng)
    }

    /// The keys of [`VirtualApp::teks`] made inconsistent the way the real backend's
    /// own suite does it: the second key's start moved by 10 intervals, off the grid
    /// of days (the backend drops such a batch behind a 204, IMM-UPLOAD).
    pub fn inconsistent_teks(&mut self, now: Timestamp) -> Vec<Value> {
        let mut teks = self.teks(now);
        if let Some(n) = teks.get(1).and_then(|k| k["rolling_start_number"].as_i64()) {
            teks[1]["rolling_start_number"] = json!(n + 10);
        }
        teks
    }

    /// One key per day for the 14 days up to `now` (most recent first).
    pub fn teks(&mut self, now: Timestamp) -> Vec<Value> {
        let today = now.as_second().div_euclid(600).div_euclid(144) * 144;
        (0..14)
            .map(|d| {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                key[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                json!({
                    "key_data": base64::engine::general_purpose::STANDARD.encode(key),
                    "rolling_start_number": today - 144 * d,
                    "rolling_period": 144,
                })
            })
            .collect()
    }

    fn padding(&mut self) -> String {
        let len = self.rng.index(64);
        self.rng.string_from(b"0123456789abcdef", len)
    }

    /// Sends `body` (padded) to `path` with the bearer `token`.
    pub async fn send(
        &mut self,
        path: &str,
        token: &str,
        dummy: bool,
        mut body: Value,
        clock: Option<Timestamp>,
    ) -> AppAnswer {
        body["padding"] = Value::String(self.padding());
        let mut req = self
            .http
            .post(format!("{}{path}", self.immuni))
            .header("Authorization", format!("Bearer {token}"))
            .header("Immuni-Dummy-Data", if dummy { "1" } else { "0" })
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        if let Some(t) = clock {
            req = req.header("Immuni-Client-Clock", t.as_second().to_string());
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (cache_control, detail) = (header("cache-control"), header("x-ecosim-detail"));
                let warning = header(ecosim_core::journal::NOTE_HEADER);
                let text = res.text().await.unwrap_or_default();
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                AppAnswer { status, body, cache_control, detail, warning }
            }
            Err(e) => AppAnswer {
                status: 0,
                body: json!({"transport_error": e.to_string()}),
                cache_control: None,
                detail: None,
                warning: None,
            },
        }
    }

    /// `check-otp` for `otp`.
    pub async fn check_otp(&mut self, otp: &Otp, dummy: bool) -> AppAnswer {
        self.send("/v1/ingestion/check-otp", &otp.sha256(), dummy, json!({}), None).await
    }

    /// `upload` with the token `token` (an OTP's or a CUN's hash).
    pub async fn upload(
        &mut self,
        token: &str,
        teks: Vec<Value>,
        province: &str,
        now: Timestamp,
        dummy: bool,
    ) -> AppAnswer {
        let body = json!({"teks": teks, "province": province, "exposure_detection_summaries": [], "countries_of_interest": []});
        self.send("/v1/ingestion/upload", token, dummy, body, Some(now)).await
    }

    /// `check-cun`: the self-service unlock with the CUN and the card's last 8 digits.
    pub async fn check_cun(&mut self, cun: &Cun, last8: &CardLast8, symptoms: Option<Date>, dummy: bool) -> AppAnswer {
        let mut body = json!({"last_his_number": last8.as_str()});
        if let Some(d) = symptoms {
            body["symptoms_started_on"] = Value::String(d.to_string());
        }
        self.send("/v1/ingestion/check-cun", &cun.sha256(), dummy, body, None).await
    }

    /// `get-dgc`: a green certificate by code type (`authcode`, `cun`, `nrfe`, `nucg`,
    /// `cuev`), the code's hash, the card's last 8 digits and expiry.
    pub async fn get_dgc(
        &mut self,
        token_type: &str,
        code_hash: &str,
        last8: &CardLast8,
        card_expiry: Date,
        dummy: bool,
    ) -> AppAnswer {
        let body = json!({"token_type": token_type, "last_his_number": last8.as_str(), "his_expiring_date": card_expiry.to_string()});
        self.send("/v1/ingestion/get-dgc", code_hash, dummy, body, None).await
    }

    /// The hash `get-dgc` sends for `code` of `token_type`: a CUN's bearer for
    /// `cun`, `NUCG-`/`CUEV-` and the bare code hashed for `nucg`/`cuev`, the code
    /// itself hashed otherwise (an AUTHCODE, an NRFE).
    pub fn code_hash(token_type: &str, code: &str) -> Result<String, ecosim_domain::codes::CodeError> {
        Ok(match token_type {
            "cun" => Self::cun_token(&Cun::parse(code)?),
            "nucg" | "cuev" => {
                let bare = code.rsplit('-').next().unwrap_or(code);
                sha256_hex(&format!("{}-{bare}", token_type.to_uppercase()))
            }
            _ => sha256_hex(code),
        })
    }

    /// The bearer an app uses after a CUN unlock.
    pub fn cun_token(cun: &Cun) -> String {
        sha256_hex(&cun.to_string())
    }
}
