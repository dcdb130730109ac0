//! `ecosim app`: the citizen's virtual Immuni app against a running ecosystem. It
//! finds Immuni and the virtual clock through the control plane (`--url`), reads
//! the citizen's health card from the registry (`--citizen CF`), and does what the
//! real app does: hashes the OTP or CUN into the bearer, pads each request, makes
//! the Temporary Exposure Keys of the last 14 days, sends dummy traffic when asked.
//!
//! Exit 0 when Immuni answered 2xx, 1 when it refused (its answer printed), 2 when
//! the call could not be made.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use ecosim_domain::codes::{CardLast8, Cun, Otp};
use jiff::civil::Date;
use serde_json::Value;

use crate::app::{AppAnswer, VirtualApp};

/// `ecosim app` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The control plane of the running ecosystem (`ecosim up`).
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// The admin token, when the ecosystem listens beyond loopback.
    #[arg(long, env = "ECOSIM_ADMIN_TOKEN", global = true)]
    token: Option<String>,
    /// Send the request as dummy traffic (`Immuni-Dummy-Data: 1`), as the app does
    /// to hide real uploads.
    #[arg(long, global = true)]
    dummy: bool,
    /// Seed of the app's randomness (OTPs, padding, keys); default: fresh each run.
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Print Immuni's answer as JSON (status, body, headers the simulator adds).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show a new OTP, to dictate to a call-centre or ASL operator.
    NewOtp,
    /// Check an OTP an operator authorised (`/v1/ingestion/check-otp`).
    CheckOtp {
        /// The OTP the app showed.
        otp: String,
    },
    /// Self-service unlock with the CUN and the health card's last 8 digits
    /// (`/v1/ingestion/check-cun`).
    CheckCun {
        /// The CUN from the SMS (`CUN-` and ten characters).
        cun: String,
        #[command(flatten)]
        card: Card,
        /// When symptoms started (`YYYY-MM-DD`).
        #[arg(long)]
        symptoms: Option<Date>,
    },
    /// Upload the keys of the last 14 days, with the OTP or after a CUN unlock
    /// (`/v1/ingestion/upload`).
    Upload {
        /// The OTP checked before.
        #[arg(long, conflicts_with = "cun", required_unless_present = "cun")]
        otp: Option<String>,
        /// The CUN the app was unlocked with.
        #[arg(long)]
        cun: Option<String>,
        /// Province of the upload.
        #[arg(long, default_value = "RM")]
        province: String,
        /// Keys the real backend drops (a start off the day grid), to see its 204.
        #[arg(long)]
        inconsistent: bool,
    },
    /// Retrieve the green certificate (`/v1/ingestion/get-dgc`).
    GetDgc {
        /// The code from the SMS or e-mail (an AUTHCODE unless --type says otherwise).
        #[arg(long, alias = "code")]
        authcode: String,
        /// What the code is: authcode, cun, nrfe, nucg or cuev.
        #[arg(long = "type", default_value = "authcode")]
        token_type: String,
        #[command(flatten)]
        card: Card,
        /// Save the certificate's QR code (PNG) here.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
}

/// The health card: read from the registry by codice fiscale, or typed in.
#[derive(Debug, clap::Args)]
struct Card {
    /// The citizen's codice fiscale: their card is read from the ecosystem's registry.
    #[arg(long, required_unless_present = "card_digits")]
    citizen: Option<String>,
    /// The card's last 8 digits (instead of --citizen).
    #[arg(long, conflicts_with = "citizen")]
    card_digits: Option<String>,
    /// The card's expiry, `YYYY-MM-DD` (with --card-digits, for get-dgc).
    #[arg(long, requires = "card_digits")]
    card_expiry: Option<Date>,
}

/// What the control plane says of the running ecosystem.
struct Ecosystem {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Ecosystem {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.url.trim_end_matches('/')));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("no ecosystem answers at {} (is `ecosim up` running?)", self.url))?;
        let status = res.status();
        let v: Value = res.json().await.with_context(|| format!("{path}: not JSON"))?;
        if !status.is_success() {
            bail!("{path}: {status} {}", v["detail"].as_str().unwrap_or(""));
        }
        Ok(v)
    }

    async fn immuni(&self) -> anyhow::Result<String> {
        let summary = self.get("/").await?;
        summary["systems"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["system"] == "immuni"))
            .and_then(|s| s["url"].as_str())
            .map(str::to_owned)
            .context("the control plane lists no Immuni")
    }

    async fn now(&self) -> anyhow::Result<jiff::Timestamp> {
        let clock = self.get("/_admin/clock").await?;
        clock["now"].as_str().context("no clock")?.parse().context("the clock's time")
    }

    /// The card's last 8 digits and expiry.
    async fn card(&self, card: &Card) -> anyhow::Result<(CardLast8, Option<Date>)> {
        if let Some(digits) = &card.card_digits {
            let last8 = CardLast8::parse(digits).map_err(|e| anyhow::anyhow!("--card-digits: {e}"))?;
            return Ok((last8, card.card_expiry));
        }
        let cf = card.citizen.as_deref().unwrap_or_default().trim().to_uppercase();
        let found = self.get(&format!("/_admin/dashboard/citizens?limit=1&q={cf}")).await?;
        let person = found
            .as_array()
            .and_then(|a| a.iter().find(|p| p["codice_fiscale"] == cf.as_str()))
            .with_context(|| format!("--citizen: no {cf} in the ecosystem's registry"))?;
        let number = person["tessera_sanitaria"].as_str().context("no card")?;
        let last8 = CardLast8::parse(&number[number.len().saturating_sub(8)..]).map_err(|e| anyhow::anyhow!("{e}"))?;
        let expiry = person["scadenza_ts"].as_str().and_then(|d| d.parse().ok());
        Ok((last8, expiry))
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<ExitCode> {
    let eco = Ecosystem { http: reqwest::Client::new(), url: args.url.clone(), token: args.token.clone() };
    let seed = match args.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            u64::from_le_bytes(bytes)
        }
    };
    let immuni = eco.immuni().await?;
    let mut app = VirtualApp::new(&immuni, seed);
    let dummy = args.dummy;
    let answer = match args.command {
        Command::NewOtp => {
            println!("{}", app.new_otp());
            return Ok(ExitCode::SUCCESS);
        }
        Command::CheckOtp { otp } => app.check_otp(&parse_otp(&otp)?, dummy).await,
        Command::CheckCun { cun, card, symptoms } => {
            let (last8, _) = eco.card(&card).await?;
            app.check_cun(&parse_cun(&cun)?, &last8, symptoms, dummy).await
        }
        Command::Upload { otp, cun, province, inconsistent } => {
            let token = match (otp, cun) {
                (Some(o), _) => parse_otp(&o)?.sha256(),
                (None, Some(c)) => VirtualApp::cun_token(&parse_cun(&c)?),
                (None, None) => bail!("give --otp or --cun"),
            };
            let now = eco.now().await?;
            let teks = if inconsistent { app.inconsistent_teks(now) } else { app.teks(now) };
            app.upload(&token, teks, &province, now, dummy).await
        }
        Command::GetDgc { authcode, token_type, card, qr } => {
            let (last8, expiry) = eco.card(&card).await?;
            let expiry = expiry.context("--card-expiry is needed with --card-digits for get-dgc")?;
            let hash =
                VirtualApp::code_hash(&token_type, authcode.trim()).map_err(|e| anyhow::anyhow!("--authcode: {e}"))?;
            let answer = app.get_dgc(&token_type, &hash, &last8, expiry, dummy).await;
            if let (Some(file), Some(png)) = (qr, answer.body["qrcode"].as_str()) {
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(png).context("the QR code is not base64")?;
                std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!("QR code saved to {}", file.display());
            }
            answer
        }
    };
    print(&answer, args.json);
    Ok(match answer.status {
        0 => ExitCode::from(2),
        200..=299 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

fn parse_otp(text: &str) -> anyhow::Result<Otp> {
    Otp::parse(text.trim()).map_err(|e| anyhow::anyhow!("OTP {text:?}: {e}"))
}

fn parse_cun(text: &str) -> anyhow::Result<Cun> {
    Cun::parse(text.trim()).map_err(|e| anyhow::anyhow!("CUN {text:?}: {e}"))
}

fn print(a: &AppAnswer, json: bool) {
    if json {
        let v = serde_json::json!({
            "status": a.status, "body": a.body, "warning": a.warning, "detail": a.detail, "cache_control": a.cache_control,
        });
        println!("{v}");
        return;
    }
    let reason = reqwest::StatusCode::from_u16(a.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    println!("{} {reason}", a.status);
    let mut body = a.body.clone();
    if let Some(qr) = body.get_mut("qrcode") {
        // A QR code is a picture: say how big, do not print it.
        *qr = Value::String(format!("<PNG, {} bytes of base64; --qr FILE saves it>", qr.as_str().map_or(0, str::len)));
    }
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    }
    for (name, value) in [("detail", &a.detail), ("warning", &a.warning)] {
        if let Some(v) = value {
            println!("{name}: {v}");
        }
    }
}
