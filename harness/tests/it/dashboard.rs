//! The workshop dashboard: its API over HTTP, and the page driven in headless
//! Chromium as a trainer would, with screenshots under `target/dashboard/`.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver`; `.ci/run`
//! installs them and sets `ECOSIM_BROWSER_TESTS=required`, which turns a missing
//! browser into a failure. Without that variable a machine without Chromium skips
//! them, saying so.

use std::path::PathBuf;
use std::time::Duration;

use ecosim_core::System;
use ecosim_domain::population::Citizen;
use ecosim_harness::webdriver::{self, Browser};
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_ecosystem};

const WAIT: Duration = Duration::from_secs(20);

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard")
}

async fn browser(test: &str) -> Option<Browser> {
    if !webdriver::available() {
        assert!(
            std::env::var("ECOSIM_BROWSER_TESTS").as_deref() != Ok("required"),
            "ECOSIM_BROWSER_TESTS=required but {} or {} is missing",
            webdriver::CHROMIUM,
            webdriver::CHROMEDRIVER
        );
        eprintln!("{test}: skipped, no headless Chromium here (apt-get install chromium chromium-driver)");
        return None;
    }
    Some(Browser::start(1500, 1000).await.expect("headless chromium starts"))
}

fn adult_with_phone_and_mail(t: &TestEco, skip: usize) -> Citizen {
    let today = t.eco.context().clock().today();
    t.eco
        .context()
        .population()
        .iter()
        .filter(|c| c.age_on(today) >= 30 && c.mobile().is_some() && c.email().is_some())
        .nth(skip)
        .cloned()
        .expect("an adult with a phone and an e-mail")
}

async fn get(t: &TestEco, path: &str, accept: &str) -> reqwest::Response {
    t.http.get(t.url(System::ControlPlane, path)).header("accept", accept).send().await.expect("answer")
}

async fn post(t: &TestEco, path: &str, body: Value) -> (u16, Value) {
    let res = t.http.post(t.url(System::ControlPlane, path)).json(&body).send().await.expect("answer");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_browser_gets_the_page_and_other_clients_the_summary() {
    let t = spawn_ecosystem().await;
    let page = get(&t, "/", "text/html,application/xhtml+xml").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.expect("text");
    assert!(html.contains("<title>ecosim") && html.contains("/_admin/dashboard/events"), "the page");
    assert!(!html.contains("http://") && !html.contains("https://"), "no CDN or outside link: works offline");
    let summary: Value = get(&t, "/", "application/json").await.json().await.expect("json");
    assert_eq!(summary["seed"], 42);
    // The page is not an exchange of the flow.
    assert!(t.eco.context().journal().since(0).exchanges.iter().all(|e| e.to != "control-plane"));
}

#[tokio::test]
async fn the_event_stream_carries_recent_exchanges_then_new_ones_with_the_clock() {
    let t = spawn_ecosystem().await;
    let c = adult_with_phone_and_mail(&t, 0);
    let lab = format!("lab-{}", c.region().code);
    t.post_as(&lab, System::Sar, "/sar/v1/esiti", &t.report(&c, "POSITIVO")).await;
    t.eco.context().journal().changed().await;
    let mut res = get(&t, "/_admin/dashboard/events?tail=1", "text/event-stream").await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut batches = Vec::new();
    // The first batch: the latest exchange; then a new one as it happens.
    let anonymous = t.http.post(t.url(System::SistemaTs, "/ts/v1/test-results")).json(&json!({})).send();
    let mut sent = Some(anonymous);
    let has_401 = |batches: &[Value]| {
        batches
            .iter()
            .skip(1)
            .flat_map(|b| b["exchanges"].as_array().cloned().unwrap_or_default())
            .any(|e| e["path"] == "/ts/v1/test-results" && e["status"] == 401)
    };
    while batches.len() < 2 || !has_401(&batches) {
        let chunk = tokio::time::timeout(WAIT, res.chunk()).await.expect("an event in time").expect("read");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                batches.push(serde_json::from_str::<Value>(data).expect("json"));
            }
        }
        if let Some(s) = sent.take() {
            assert_eq!(s.await.expect("answer").status(), 401);
        }
    }
    let first = batches[0]["exchanges"].as_array().expect("exchanges");
    assert_eq!(first.len(), 1, "tail=1 starts from the latest: {first:?}");
    assert_eq!(batches[0]["clock"]["today"], t.today());
    let seqs: Vec<u64> = batches
        .iter()
        .flat_map(|b| b["exchanges"].as_array().cloned().unwrap_or_default())
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "each exchange once, in order: {seqs:?}");
}

#[tokio::test]
async fn consoles_call_the_real_apis_and_refuse_what_is_not_a_call() {
    let t = spawn_ecosystem().await;
    let c = adult_with_phone_and_mail(&t, 1);
    let (status, v) = post(
        &t,
        "/_admin/dashboard/call",
        json!({"system": "sar", "account": format!("lab-{}", c.region().code), "method": "POST",
               "path": "/sar/v1/esiti", "body": t.report(&c, "POSITIVO")}),
    )
    .await;
    assert_eq!((status, v["status"].as_u64()), (200, Some(202)), "{v}");
    let exchanges = t.eco.context().journal().since(0).exchanges;
    assert!(exchanges.iter().any(|e| e.from == format!("lab-{}", c.region().code) && e.path == "/sar/v1/esiti"));
    for (body, field) in [
        (json!({"system": "control-plane", "account": "lab-010", "method": "GET", "path": "/"}), "system"),
        (json!({"system": "sar", "account": "lab-010", "method": "GET", "path": "/_admin/state"}), "path"),
        (json!({"system": "sar", "account": "nobody", "method": "GET", "path": "/sar/v1/esiti/x"}), "account"),
        (json!({"system": "sar", "account": "lab-010", "method": "TRACE", "path": "/sar/v1/esiti/x"}), "method"),
    ] {
        let (status, v) = post(&t, "/_admin/dashboard/call", body).await;
        assert_eq!(status, 400, "{v}");
        assert!(v.to_string().contains(field), "names {field}: {v}");
    }
    // The phone: the CUN SMS and e-mail of that result.
    let cf = c.codice_fiscale().as_str().to_owned();
    let mut phone = Value::Null;
    for _ in 0..100 {
        phone = get(&t, &format!("/_admin/dashboard/phone/{cf}"), "application/json").await.json().await.expect("json");
        if phone["sms"][0]["messages"].as_array().is_some_and(|m| !m.is_empty())
            && phone["mail"].as_array().is_some_and(|m| !m.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(phone["sms"][0]["messages"][0]["text"].as_str().is_some_and(|s| s.contains("CUN-")), "{phone}");
    assert!(phone["mail"][0]["body"].as_str().is_some_and(|s| s.contains("CUN-")), "{phone}");
    let stranger = *ecosim_domain::population::Population::generate(7, 1).get(0).expect("one").codice_fiscale();
    assert!(t.eco.context().population().by_codice_fiscale(&stranger).is_none());
    let res = get(&t, &format!("/_admin/dashboard/phone/{}", stranger.as_str()), "application/json").await;
    assert_eq!(res.status(), 404);
    assert_eq!(get(&t, "/_admin/dashboard/phone/not-a-cf", "application/json").await.status(), 400);
    // The app: a new OTP, and a check of an OTP nobody authorised (Immuni's 401).
    let (_, otp) = post(&t, "/_admin/dashboard/app", json!({"action": "new-otp"})).await;
    let otp = otp["otp"].as_str().expect("an otp").to_owned();
    let (status, v) = post(&t, "/_admin/dashboard/app", json!({"action": "check-otp", "otp": otp})).await;
    assert_eq!((status, v["status"].as_u64(), v["body"]["error_code"].as_u64()), (200, Some(401), Some(1101)), "{v}");
    let (status, v) = post(&t, "/_admin/dashboard/app", json!({"action": "check-otp", "otp": "nope"})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(&t, "/_admin/dashboard/app", json!({"action": "fly"})).await;
    assert_eq!(status, 400, "{v}");
}

/// Labels of the diagram's arrows, in order.
const LABELS: &str = "[...document.querySelectorAll('#diagram .label')].map(e => e.textContent)";

async fn open(b: &Browser, t: &TestEco, c: &Citizen) {
    b.goto(&t.eco.url(System::ControlPlane)).await.expect("page");
    b.wait_for("window.ecosimStats && window.ecosimStats.connected", WAIT, "the live stream").await.expect("stream");
    let cf = c.codice_fiscale().as_str();
    b.type_into("#search", cf).await.expect("search");
    let row = format!("#results div[data-cf='{cf}']");
    b.wait_for(&format!("document.querySelector(\"{row}\")"), WAIT, "the citizen in the results").await.expect("found");
    b.click(&row).await.expect("pick");
}

async fn labels_include(b: &Browser, wanted: &[&str]) {
    let all = wanted.iter().map(|w| format!("labels.some(l => l.includes('{w}'))")).collect::<Vec<_>>().join(" && ");
    b.wait_for(&format!("(() => {{ const labels = {LABELS}; return {all}; }})()"), WAIT, &format!("arrows {wanted:?}"))
        .await
        .expect("arrows");
}

#[tokio::test]
async fn in_the_browser_a_positive_result_texts_the_cun_and_the_call_centre_unlocks_the_app() {
    let t = spawn_ecosystem().await;
    let Some(b) = browser("flows 1 and 2").await else { return };
    let c = adult_with_phone_and_mail(&t, 2);
    open(&b, &t, &c).await;

    // Flow 1: the lab console reports a positive result; the CUN SMS reaches the phone
    // and the diagram shows lab -> SAR -> Sistema TS and SAR -> SMS gateway, live.
    b.click("#lab-send").await.expect("report");
    b.wait_for("document.querySelector('#lab-answer .answer.ok')", WAIT, "the SAR's 202").await.expect("202");
    b.wait_for("/CUN-[A-Z0-9]{10}/.test(document.querySelector('#sms').innerText)", WAIT, "the CUN SMS")
        .await
        .expect("sms");
    labels_include(&b, &["POST /sar/v1/esiti", "POST /ts/v1/test-results", "POST /sms/v1/messages", "SMS"]).await;
    b.wait_for("document.querySelector('#mail .mail')", WAIT, "the CUN e-mail").await.expect("mail");
    b.screenshot(&shots().join("1-cun-sms.png")).await.expect("screenshot");
    // Each arrow opens its exchange: Sistema TS answered 201 with the CUN.
    b.script(
        "const l = [...document.querySelectorAll('#diagram .label')].find(e => e.textContent.includes('/ts/v1/test-results'));\
         l.parentElement.click(); return true;",
        vec![],
    )
    .await
    .expect("click");
    let detail = b
        .wait_for(
            "!document.querySelector('#detail').hidden && document.querySelector('#detail').innerText",
            WAIT,
            "detail",
        )
        .await
        .expect("detail");
    let detail = detail.as_str().unwrap_or("");
    assert!(
        detail.contains("201") && detail.contains(c.codice_fiscale().as_str()) && detail.contains("CUN-"),
        "{detail}"
    );
    b.screenshot(&shots().join("2-exchange-detail.png")).await.expect("screenshot");
    b.click("#detail-close").await.expect("close");

    // Flow 2: the app shows an OTP, the call centre unlocks with the CUN the citizen
    // reads, the app checks the OTP and uploads its keys.
    let cun = b.script("return document.querySelector('#sms').innerText.match(/CUN-[A-Z0-9]{10}/)[0];", vec![]).await;
    let cun = cun.expect("cun").as_str().expect("text").to_owned();
    b.click("#app-new-otp").await.expect("new otp");
    b.wait_for("document.querySelector('#app-otp').textContent.length === 10", WAIT, "an OTP").await.expect("otp");
    b.click("[data-tab='callcenter']").await.expect("tab");
    b.type_into("#cc-cun", &cun).await.expect("cun");
    b.click("#cc-send").await.expect("unlock");
    b.wait_for("document.querySelector('#cc-answer .answer')", WAIT, "the unlock's answer").await.expect("answer");
    let unlocked = b.script("return document.querySelector('#cc-answer').innerText;", vec![]).await.expect("text");
    assert!(unlocked.as_str().is_some_and(|s| s.starts_with("204")), "{unlocked}");
    b.click("#app-check-otp").await.expect("check");
    b.wait_for("/^204/.test(document.querySelector('#app-answer').innerText)", WAIT, "check-otp 204")
        .await
        .expect("204");
    b.click("#app-upload").await.expect("upload");
    b.wait_for("/^204/.test(document.querySelector('#app-answer').innerText)", WAIT, "upload 204").await.expect("204");
    labels_include(
        &b,
        &[
            "POST /ts/v1/sblocchi/call-center",
            "POST /v1/otp",
            "POST /v1/ingestion/check-otp",
            "POST /v1/ingestion/upload",
        ],
    )
    .await;
    // A call made while answering another is drawn below it, as a sequence diagram
    // reads: the call centre's request, then Sistema TS's call to Immuni (the journal
    // records the inner exchange first, since it ends first).
    let order = b
        .script(
            &format!(
                "const l = {LABELS}; return [l.findIndex(x => x.includes('POST /ts/v1/sblocchi/call-center')), \
                 l.findIndex(x => x.includes('POST /v1/otp'))];"
            ),
            vec![],
        )
        .await
        .expect("order");
    let (outer, inner) = (order[0].as_i64().unwrap_or(-1), order[1].as_i64().unwrap_or(-1));
    assert!(
        0 <= outer && outer < inner,
        "the call centre's unlock at row {outer}, Sistema TS's call to Immuni at {inner}"
    );
    b.screenshot(&shots().join("3-immuni-unlock-upload.png")).await.expect("screenshot");
    // The ASL unlocks a new OTP with the codice fiscale and the symptom date.
    let first_otp = b.script("return document.querySelector('#app-otp').textContent;", vec![]).await.expect("otp");
    b.click("#app-new-otp").await.expect("new otp");
    b.wait_for(
        &format!("document.querySelector('#asl-otp').value.length === 10 && document.querySelector('#asl-otp').value !== {first_otp}"),
        WAIT,
        "a second OTP",
    )
    .await
    .expect("otp");
    b.click("[data-tab='asl']").await.expect("tab");
    b.click("#asl-send").await.expect("unlock");
    b.wait_for("/^204/.test(document.querySelector('#asl-answer').innerText)", WAIT, "the ASL's 204")
        .await
        .expect("204");
    b.click("#app-check-otp").await.expect("check");
    b.wait_for("/^204/.test(document.querySelector('#app-answer').innerText)", WAIT, "check-otp 204")
        .await
        .expect("204");
    labels_include(&b, &["POST /ts/v1/sblocchi/asl"]).await;
    // In Italian, for the room: every label switches, the diagram stays.
    let before = b.script("return document.querySelector('#lang').textContent;", vec![]).await.expect("lang");
    b.click("#lang").await.expect("language");
    let (want_title, want_button) =
        if before == "IT" { ("Scambi tra i sistemi", "Sblocca") } else { ("Exchanges between systems", "Unlock") };
    let shown = b
        .script("return [document.querySelector('[data-i18n=sequence]').textContent, document.querySelector('#cc-send').textContent];", vec![])
        .await
        .expect("labels");
    assert_eq!(shown, json!([want_title, want_button]));
    b.screenshot(&shots().join("3-in-the-other-language.png")).await.expect("screenshot");
    // The upload reached Immuni with 14 keys.
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"][0]["teks"].as_array().map(Vec::len), Some(14), "{uploads}");
}

/// Advances the clock a day from the page, waits for the AUTHCODE SMS on the phone,
/// and opens the green pass with it in the virtual app until its QR shows.
async fn the_next_day_the_authcode_opens_the_qr(b: &Browser) {
    b.click("[data-advance='1d']").await.expect("advance");
    b.wait_for("/AUTHCODE [A-Z0-9]+/.test(document.querySelector('#sms').innerText)", WAIT, "the AUTHCODE SMS")
        .await
        .expect("authcode");
    let code =
        b.script("return document.querySelector('#sms').innerText.match(/AUTHCODE ([A-Z0-9]+)/)[1];", vec![]).await;
    b.type_into("#app-authcode", code.expect("code").as_str().expect("text")).await.expect("type");
    b.click("#app-get-dgc").await.expect("get-dgc");
    b.wait_for(
        "document.querySelector('#qr-img') && document.querySelector('#qr-img').naturalWidth > 100",
        WAIT,
        "the QR",
    )
    .await
    .expect("qr");
}

#[tokio::test]
async fn in_the_browser_two_doses_and_a_day_later_the_authcode_opens_the_green_pass_qr() {
    let t = spawn_ecosystem().await;
    let Some(b) = browser("flows 3 and 4").await else { return };
    let c = adult_with_phone_and_mail(&t, 3);
    open(&b, &t, &c).await;
    b.click("[data-tab='vacc']").await.expect("tab");
    let today = t.eco.context().clock().today();
    let ago = |days: i64| today.checked_sub(jiff::Span::new().days(days)).expect("date").to_string();
    for (date, n) in [(ago(56), 1), (ago(28), 2)] {
        b.script("document.querySelector('#vacc-date').value = arguments[0]; return true;", vec![json!(date)])
            .await
            .expect("date");
        b.click("#vacc-send").await.expect("register");
        b.wait_for(
            &format!("/^201/.test(document.querySelector('#vacc-answer').innerText) && document.querySelector('#vacc-answer').innerText.includes('\"numero_dose\": {n}')"),
            WAIT,
            &format!("dose {n} registered"),
        )
        .await
        .expect("201");
    }
    labels_include(&b, &["POST /avr/v1/vaccinazioni", "POST /avn/v1/somministrazioni"]).await;
    // A booster for someone in no risk category: the AVR's rule refuses it (AVR-6c),
    // and the console says why.
    b.script(
        "document.querySelector('#vacc-tipo').value = 'booster'; document.querySelector('#vacc-date').value = arguments[0]; return true;",
        vec![json!(today.to_string())],
    )
    .await
    .expect("booster");
    b.click("#vacc-send").await.expect("register a booster");
    b.wait_for("document.querySelector('#vacc-answer .answer.bad')", WAIT, "the refusal").await.expect("refused");
    let refusal = b.script("return document.querySelector('#vacc-answer').innerText;", vec![]).await.expect("text");
    let refusal = refusal.as_str().unwrap_or("");
    assert!(
        refusal.starts_with("422") && refusal.contains("AVR-"),
        "a rule's refusal naming its requirement: {refusal}"
    );
    // A day later AVN forwards, PN-DGC certifies and texts the AUTHCODE.
    the_next_day_the_authcode_opens_the_qr(&b).await;
    labels_include(&b, &["POST /ts/v1/avn/vaccinazioni", "POST /pn-dgc/v1/eventi"]).await;
    labels_include(&b, &["POST /v1/ingestion/get-dgc", "GET /v1/dgc"]).await;
    b.screenshot(&shots().join("4-green-pass-qr.png")).await.expect("screenshot");
}

/// `ecosim app` against the running ecosystem: the binary, as a trainer types it.
async fn app(t: &TestEco, args: &[&str]) -> (i32, String, String) {
    let url = t.eco.url(System::ControlPlane);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ecosim"))
            .arg("app")
            .arg(format!("--url={url}"))
            .args(args)
            .output()
    })
    .await
    .expect("joined")
    .expect("ecosim app runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn ecosim_app_unlocks_with_the_cun_uploads_and_fetches_the_green_pass_qr() {
    let t = spawn_ecosystem().await;
    let c = adult_with_phone_and_mail(&t, 4);
    let cf = c.codice_fiscale().as_str().to_owned();
    let mobile = c.mobile().expect("mobile").to_string();
    let lab = format!("lab-{}", c.region().code);
    t.lab_reports(&lab, &t.report(&c, "POSITIVO")).await;
    let mut sms = Vec::new();
    for _ in 0..200 {
        sms = t.cun_sms(&mobile).await;
        if !sms.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cun = crate::support::cun_in(sms.first().and_then(|m| m["text"].as_str()).expect("the CUN SMS"));

    // Self-service unlock with the card read from the registry, then the upload.
    let (code, out, err) = app(&t, &["check-cun", &cun, "--citizen", &cf]).await;
    assert_eq!((code, out.lines().next()), (0, Some("204 No Content")), "{out}{err}");
    let (code, out, err) = app(&t, &["upload", "--cun", &cun]).await;
    assert_eq!((code, out.lines().next()), (0, Some("204 No Content")), "{out}{err}");
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"][0]["teks"].as_array().map(Vec::len), Some(14), "{uploads}");

    // Refusals: Immuni's (exit 1, its answer printed), and the app's own (exit 2).
    let (code, otp, _) = app(&t, &["new-otp"]).await;
    assert_eq!(code, 0);
    let (code, out, _) = app(&t, &["check-otp", otp.trim(), "--json"]).await;
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!((code, v["status"].as_u64(), v["body"]["error_code"].as_u64()), (1, Some(401), Some(1101)), "{out}");
    let (code, _, err) = app(&t, &["check-otp", "nope"]).await;
    assert!(code == 2 && err.contains("OTP"), "{err}");
    let (code, _, err) = app(&t, &["check-cun", &cun, "--citizen", "RSSMRA80A01H501U"]).await;
    assert!(code == 2 && err.contains("--citizen"), "{err}");

    // A negative test through the SAR: a test certificate, retrieved with its CUN
    // (the SAR keeps the contacts, so no AUTHCODE is sent: ORD-3.1a5), the QR saved.
    let other = adult_with_phone_and_mail(&t, 5);
    let other_mobile = other.mobile().expect("mobile").to_string();
    t.lab_reports(&format!("lab-{}", other.region().code), &t.report(&other, "NEGATIVO")).await;
    let mut sms = Vec::new();
    for _ in 0..200 {
        sms = t.cun_sms(&other_mobile).await;
        if !sms.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let negative_cun = crate::support::cun_in(sms.first().and_then(|m| m["text"].as_str()).expect("the CUN SMS"));
    let qr = std::env::temp_dir().join(format!("ecosim-app-qr-{}.png", std::process::id()));
    let qr_arg = qr.display().to_string();
    let get = [
        "get-dgc",
        "--type",
        "cun",
        "--code",
        &negative_cun,
        "--citizen",
        other.codice_fiscale().as_str(),
        "--qr",
        &qr_arg,
    ];
    let (mut code, mut out, mut err) = app(&t, &get).await;
    for _ in 0..50 {
        if code == 0 {
            break;
        }
        // The certificate is signed just after the result: ask again as the app would.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (code, out, err) = app(&t, &get).await;
    }
    assert_eq!((code, out.lines().next()), (0, Some("200 OK")), "{out}{err}");
    assert!(out.contains("<PNG,"), "the QR is not printed as text: {out}");
    let png = std::fs::read(&qr).expect("the QR file");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let _ = std::fs::remove_file(&qr);
    // The wrong card digits: Immuni's refusal, exit 1.
    let (code, out, _) = app(
        &t,
        &[
            "get-dgc",
            "--type",
            "cun",
            "--code",
            &negative_cun,
            "--card-digits",
            "00000000",
            "--card-expiry",
            "2030-01-01",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
}

#[tokio::test]
async fn the_dashboard_benchmark_counts_what_the_page_drew() {
    if browser("bench dashboard").await.is_none() {
        return;
    }
    let f = ecosim_harness::bench::dashboard_follow(20, 1).await.expect("a run");
    assert_eq!((f.sent, f.rendered), (20, 20), "{f:?}");
    assert!(f.load > Duration::ZERO && f.connected >= f.load / 2, "{f:?}");
}

#[tokio::test]
async fn a_scenario_plays_a_step_at_a_time_with_its_narration() {
    let t = spawn_ecosystem().await;
    let (status, v) = post(&t, "/_admin/dashboard/play/step", json!(null)).await;
    assert_eq!(status, 404, "nothing loaded: {v}");
    let (status, v) = post(&t, "/_admin/dashboard/play", json!({"scenario": "flows/nope"})).await;
    assert!(status == 400 && v.to_string().contains("scenario"), "{v}");
    let (status, v) = post(&t, "/_admin/dashboard/play", json!({"scenario": "flows/cun-positive-sms"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["next"], 0);
    assert!(v["citizens"]["mario"].as_str().is_some_and(|cf| cf.len() == 16), "{v}");
    // The narration names the person the play picked, not the scenario's placeholder.
    let cf = v["citizens"]["mario"].as_str().expect("cf").to_owned();
    let parsed = ecosim_domain::codes::CodiceFiscale::parse(&cf).expect("cf");
    let nome = t.eco.context().population().by_codice_fiscale(&parsed).expect("in the registry").name();
    assert_eq!(
        v["steps"][0]["narration"].as_str(),
        Some(format!("The lab sends {nome}'s positive swab to its Region's SAR, which forwards it to Sistema TS: Sistema TS answers with a new CUN.").as_str()),
        "{v}"
    );
    // Nothing ran yet: the room sees the narration first.
    assert!(t.eco.context().journal().since(0).exchanges.is_empty());
    let (_, v) = post(&t, "/_admin/dashboard/play/step", json!(null)).await;
    assert_eq!((v["next"].as_u64(), v["steps"][0]["state"].as_str()), (Some(1), Some("passed")), "{v}");
    assert_eq!(v["steps"][1]["state"], "pending");
    assert!(t.eco.context().journal().since(0).exchanges.iter().any(|e| e.path == "/sar/v1/esiti"));
    let (_, v) = post(&t, "/_admin/dashboard/play/rest", json!(null)).await;
    assert!(v["steps"].as_array().expect("steps").iter().all(|s| s["state"] == "passed"), "{v}");
    // The narration of a later step has what earlier ones captured filled in.
    assert!(v["steps"][2]["narration"].as_str().is_some_and(|n| n.contains("CUN-") && !n.contains("{{")), "{v}");
    let (status, _) = post(&t, "/_admin/dashboard/play/step", json!(null)).await;
    assert_eq!(status, 409, "no step left");
    // Played again: new people.
    let (_, again) = post(&t, "/_admin/dashboard/play", json!({"scenario": "flows/cun-positive-sms"})).await;
    assert_ne!(again["citizens"]["mario"], v["citizens"]["mario"]);
}

#[tokio::test]
async fn in_the_browser_the_trainer_plays_cun_positive_sms_and_pauses_between_steps() {
    let t = spawn_ecosystem().await;
    let Some(b) = browser("scenario player").await else { return };
    b.goto(&t.eco.url(System::ControlPlane)).await.expect("page");
    b.wait_for("window.ecosimStats && window.ecosimStats.connected", WAIT, "the live stream").await.expect("stream");
    b.click("[data-tab='play']").await.expect("tab");
    b.wait_for("document.querySelector('#play-file option')", WAIT, "the scenarios").await.expect("list");
    b.script("document.querySelector('#play-file').value = 'flows/cun-positive-sms'; return true;", vec![])
        .await
        .expect("pick");
    b.click("#play-start").await.expect("load");
    b.wait_for(
        "document.querySelector('#narration').textContent.startsWith('The lab sends ')",
        WAIT,
        "the first narration",
    )
    .await
    .expect("narration");
    b.click("#play-step").await.expect("step");
    b.wait_for(
        "document.querySelector('#play-steps li.passed') && document.querySelector('#narration').textContent.startsWith('The SAR texts ')",
        WAIT,
        "step 1 done, step 2 narrated",
    )
    .await
    .expect("paused after one step");
    labels_include(&b, &["POST /sar/v1/esiti", "POST /ts/v1/test-results"]).await;
    // Paused: the next step waits for the trainer.
    assert_eq!(
        b.script("return document.querySelectorAll('#play-steps li.passed').length;", vec![]).await.expect("n"),
        json!(1)
    );
    b.script("document.querySelector('#console-play').scrollIntoView(); return true;", vec![]).await.expect("scroll");
    b.screenshot(&shots().join("5-scenario-paused.png")).await.expect("screenshot");
    b.click("#play-run").await.expect("rest");
    b.wait_for("document.querySelectorAll('#play-steps li.passed').length === 4", WAIT, "every step passed")
        .await
        .expect("all");
    b.wait_for(
        "/CUN-[A-Z0-9]{10}/.test(document.querySelector('#sms').innerText)",
        WAIT,
        "Mario's phone shows the CUN",
    )
    .await
    .expect("sms");
    b.screenshot(&shots().join("6-scenario-done.png")).await.expect("screenshot");
}

#[tokio::test]
async fn in_the_browser_the_asl_registers_a_recovery_and_a_day_later_its_green_pass_opens() {
    let t = spawn_ecosystem().await;
    let Some(b) = browser("recovery").await else { return };
    let c = adult_with_phone_and_mail(&t, 6);
    open(&b, &t, &c).await;
    b.click("[data-tab='asl']").await.expect("tab");
    let today = t.eco.context().clock().today();
    let first = today.checked_sub(jiff::Span::new().days(20)).expect("date").to_string();
    b.script("document.querySelector('#rec-first').value = arguments[0]; return true;", vec![json!(first)])
        .await
        .expect("date");
    b.click("#rec-send").await.expect("register");
    b.wait_for("/^201/.test(document.querySelector('#rec-answer').innerText)", WAIT, "the recovery's 201")
        .await
        .expect("201");
    let answer = b.script("return document.querySelector('#rec-answer').innerText;", vec![]).await.expect("text");
    assert!(answer.as_str().is_some_and(|a| a.contains("\"nucg\"")), "Sistema TS gives the NUCG: {answer}");
    the_next_day_the_authcode_opens_the_qr(&b).await;
    labels_include(&b, &["POST /ts/v1/guarigioni", "POST /pn-dgc/v1/eventi", "POST /v1/ingestion/get-dgc"]).await;
}
