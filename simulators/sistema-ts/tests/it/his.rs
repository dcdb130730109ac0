//! The HIS interface Immuni calls: verify and invalidate, with the exact answers.

use ecosim_core::System;
use ecosim_domain::codes::sha256_hex;
use serde_json::{Value, json};

use super::{TestEco, result_for, send, spawn_ts};

async fn his(t: &TestEco, path: &str, body: Value) -> (u16, Value) {
    let res = t.post_as("immuni", System::SistemaTs, path, &body).await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_positive_cun_verifies_once_for_its_card_and_is_then_used_up() {
    let t = spawn_ts().await;
    let body = result_for(&t, "160");
    let created = send(&t, "sar-160", &body).await;
    let cun = created["cun"].as_str().expect("cun");
    let cf = body["codice_fiscale"].as_str().expect("cf");
    let c = t.citizen(|c| c.codice_fiscale().as_str() == cf);
    let last8 = c.card().number.last8().as_str().to_owned();
    let (status, v) = his(&t, "/his/v1/cun/verify", json!({"cun": sha256_hex(cun), "last_his_number": last8})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["date_test"], t.today());
    let id = v["id_test_verification"].as_str().expect("id").to_owned();
    // Wrong card digits: 401, with Immuni's shape.
    let (status, v) =
        his(&t, "/his/v1/cun/verify", json!({"cun": sha256_hex(cun), "last_his_number": "00000000"})).await;
    assert_eq!((status, v["response_code"].as_u64()), (401, Some(401)), "{v}");
    let (status, _) =
        his(&t, "/his/v1/cun/invalidate", json!({"cun": sha256_hex(cun), "id_test_verification": id})).await;
    assert_eq!(status, 200);
    let (status, v) = his(&t, "/his/v1/cun/verify", json!({"cun": sha256_hex(cun), "last_his_number": last8})).await;
    assert_eq!((status, v["response_code"].as_u64()), (409, Some(409)), "used up: {v}");
    let (status, _) = his(&t, "/his/v1/cun/verify", json!({"cun": "nope"})).await;
    assert_eq!(status, 400);
}
