//! The reference SAR/AVR's own HTTP tests: the SAR alone on port 0, its neighbours
//! (Sistema TS, the SMS gateway, AVN) stood in for by mock servers. The flows through
//! the real systems, and the certification suite, are in `harness/tests`.

mod avr;
mod esiti;

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_domain::population::Citizen;
use ecosim_sar::Sar;
use reqwest::Method;
use serde_json::Value;
use wiremock::MockServer;

/// The SAR and a mock for each neighbour.
struct Lab {
    sar: Spawned<Sar>,
    ts: MockServer,
    sms: MockServer,
    avn: MockServer,
}

impl Lab {
    /// Starts the SAR with its neighbours mocked (mount their answers before calling).
    async fn start(ts: MockServer, sms: MockServer, avn: MockServer) -> Self {
        let mut config = Config::for_tests(42);
        config.set_url(System::SistemaTs, ts.uri());
        config.set_url(System::SmsGateway, sms.uri());
        config.set_url(System::Avn, avn.uri());
        let sar = spawn::<Sar>(config).await.expect("the SAR starts");
        Self { sar, ts, sms, avn }
    }

    /// The first citizen of region 160 matching `pred`.
    fn citizen(&self, pred: impl Fn(&Citizen) -> bool) -> Citizen {
        self.sar
            .ctx
            .population()
            .iter()
            .find(|c| c.region().code == "160" && pred(c))
            .cloned()
            .expect("a matching citizen")
    }

    fn today(&self) -> String {
        self.sar.ctx.clock().today().to_string()
    }

    /// A call as `account`: `(status, body)`.
    async fn call(&self, account: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.sar.client(account).request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the SAR answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// The requests `server` received on `path`, as JSON, waiting up to 3 s for `n`.
async fn received(server: &MockServer, path: &str, n: usize) -> Vec<(Value, Option<String>)> {
    let mut got = Vec::new();
    for _ in 0..300 {
        got = server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .map(|r| {
                let key = r.headers.get("Idempotency-Key").and_then(|k| k.to_str().ok()).map(str::to_owned);
                (serde_json::from_slice(&r.body).unwrap_or(Value::Null), key)
            })
            .collect();
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    got
}
