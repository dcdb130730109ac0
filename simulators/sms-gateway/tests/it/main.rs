//! The SMS gateway's own HTTP tests: the gateway alone on port 0 (the SMTP listener
//! and the flows through it are in `harness/tests`).

use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_sms_gateway::Gateway;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type T = Spawned<Gateway>;

async fn gateway(config: Config) -> T {
    spawn::<Gateway>(config).await.expect("the gateway starts")
}

async fn send(t: &T, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/sms/v1/messages", t.url))
        .bearer_auth("sms-client-secret")
        .json(&body)
        .send()
        .await
        .expect("reachable")
}

/// A message as its sender (`sms-client`) sees it.
async fn message(t: &T, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/sms/v1/messages/{id}", t.url))
        .bearer_auth("sms-client-secret")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

async fn get_json(t: &T, p: &str) -> Value {
    reqwest::get(format!("{}{p}", t.url)).await.expect("reachable").json().await.expect("json")
}

async fn sms_inbox(t: &T, msisdn: &str) -> Vec<Value> {
    get_json(t, &format!("/sms/v1/inbox/{msisdn}")).await["messages"].as_array().cloned().unwrap_or_default()
}

/// Ids and times taken out of an answer, for snapshots.
fn redacted(mut v: Value) -> String {
    for m in v["messages"].as_array_mut().into_iter().flatten() {
        for key in ["id", "accepted_at", "delivered_at"] {
            if m.get(key).is_some() {
                m[key] = json!(format!("[{key}]"));
            }
        }
    }
    serde_json::to_string_pretty(&v).expect("json")
}

#[tokio::test]
async fn an_inbox_reads_as_the_api_documents_it() {
    let t = gateway(Config::for_tests(42)).await;
    assert_eq!(send(&t, json!({"from": "sistema Ts", "to": "+393331234567", "text": "CUN"})).await.status(), 202);
    insta::assert_snapshot!(redacted(get_json(&t, "/sms/v1/inbox/393331234567").await), @r#"
    {
      "messages": [
        {
          "accepted_at": "[accepted_at]",
          "delivered_at": "[delivered_at]",
          "encoding": "GSM-7",
          "from": "sistema Ts",
          "id": "[id]",
          "segments": 1,
          "status": "delivered",
          "text": "CUN",
          "to": "+393331234567"
        }
      ],
      "msisdn": "+393331234567"
    }
    "#);
}

#[tokio::test]
async fn a_message_is_counted_delivered_and_readable_in_the_inbox() {
    let t = gateway(Config::for_tests(42)).await;
    let res = send(&t, json!({"from": "ASL Bari", "to": "3331234567", "text": "Ciao è ù €"})).await;
    assert_eq!(res.status(), 202);
    let v: Value = res.json().await.expect("json");
    assert_eq!(
        (v["segments"].clone(), v["encoding"].clone(), v["status"].clone()),
        (json!(1), json!("GSM-7"), json!("accepted"))
    );
    let id = v["id"].as_str().expect("id");
    let msg = message(&t, id).await;
    assert_eq!(msg["status"], "delivered");
    assert_eq!(msg["to"], "+393331234567");
    for form in ["+393331234567", "393331234567"] {
        let inbox = sms_inbox(&t, form).await;
        assert_eq!(inbox.len(), 1, "{form}");
        assert_eq!(inbox[0]["text"], "Ciao è ù €");
    }
    // Another client does not see it.
    let res = t.client("sar").request(Method::GET, &format!("/sms/v1/messages/{id}")).send().await.expect("get");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn segments_and_encoding_are_counted_exactly() {
    let t = gateway(Config::for_tests(42)).await;
    for (text, segments, encoding) in [
        ("a".repeat(160), 1, "GSM-7"),
        ("a".repeat(161), 2, "GSM-7"),
        ("€".repeat(81), 2, "GSM-7"),
        ("ç".repeat(70), 1, "UCS-2"),
        ("ç".repeat(71), 2, "UCS-2"),
    ] {
        let v: Value =
            send(&t, json!({"from": "TEST", "to": "+447700900123", "text": text})).await.json().await.expect("json");
        assert_eq!((v["segments"].as_u64(), v["encoding"].as_str()), (Some(segments), Some(encoding)), "{text}");
    }
}

#[tokio::test]
async fn bad_messages_are_refused_naming_the_field() {
    let t = gateway(Config::for_tests(42)).await;
    for (body, field) in [
        (json!({"from": "X", "to": "333 1234567", "text": "hi"}), "to"),
        (json!({"from": "X", "to": "abc", "text": "hi"}), "to"),
        (json!({"from": "TwelveChars!", "to": "3331234567", "text": "hi"}), "from"),
        (json!({"from": "X", "to": "3331234567", "text": "a".repeat(1531)}), "text"),
        (json!({"from": "X", "to": "3331234567", "text": ""}), "text"),
        (json!({"from": "X", "to": "3331234567"}), "text"),
        (json!({"from": "X", "to": "3331234567", "text": "hi", "callback_url": "ftp://x"}), "callback_url"),
    ] {
        let res = send(&t, body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        let p: Value = res.json().await.expect("problem");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    let res = reqwest::Client::new()
        .post(format!("{}/sms/v1/messages", t.url))
        .bearer_auth("wrong")
        .json(&json!({"from": "X", "to": "3331234567", "text": "hi"}))
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 401);
    let res = get_json(&t, "/sms/v1/inbox/notanumber").await;
    assert_eq!(res["errors"][0]["field"], "msisdn");
}

#[tokio::test]
async fn delivery_reports_reach_the_callback() {
    let callback = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dlr"))
        .and(body_partial_json(json!({"status": "delivered", "to": "+393331234567"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&callback)
        .await;
    Mock::given(method("POST"))
        .and(path("/dlr"))
        .and(body_partial_json(json!({"status": "failed", "to": "+393330000000"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&callback)
        .await;
    let config = Config {
        sms: ecosim_core::config::SmsConfig { unreachable: vec!["+393330000000".into()] },
        ..Config::for_tests(42)
    };
    let t = gateway(config).await;
    let url = format!("{}/dlr", callback.uri());
    send(&t, json!({"from": "X", "to": "3331234567", "text": "hi", "callback_url": url})).await;
    let failed: Value = send(&t, json!({"from": "X", "to": "3330000000", "text": "hi", "callback_url": url}))
        .await
        .json()
        .await
        .expect("json");
    for _ in 0..200 {
        if callback.received_requests().await.map(|r| r.len()) == Some(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    callback.verify().await;
    assert!(sms_inbox(&t, "+393330000000").await.is_empty(), "a failed message is in no inbox");
    let msg = message(&t, failed["id"].as_str().expect("id")).await;
    assert_eq!(msg["status"], "failed");
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once() {
    let t = gateway(Config::for_tests(42)).await;
    let post = || {
        reqwest::Client::new()
            .post(format!("{}/sms/v1/messages", t.url))
            .bearer_auth("sms-client-secret")
            .header("Idempotency-Key", "dlr-1")
            .json(&json!({"from": "X", "to": "3331234567", "text": "once"}))
            .send()
    };
    let a: Value = post().await.expect("a").json().await.expect("a");
    let b: Value = post().await.expect("b").json().await.expect("b");
    assert_eq!(a, b);
    assert_eq!(sms_inbox(&t, "+393331234567").await.len(), 1);
}
