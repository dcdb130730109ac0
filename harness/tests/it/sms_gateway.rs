//! The SMTP mail catcher, which listens beside the ecosystem (the gateway's HTTP API
//! is tested in its own crate).

use crate::support::spawn_ecosystem;

#[tokio::test]
async fn mail_sent_over_smtp_lands_in_the_mailbox_once() {
    let t = spawn_ecosystem().await;
    let addr = t.eco.smtp_addr().to_string();
    let mail = ecosim_core::mail::Mail {
        from: "lab@asl.test",
        to: "Mario.Rossi@Posta.Test",
        subject: "Esito del test è pronto",
        body: ".una riga col punto\nseconda riga",
        message_id: "m-1@asl.test",
    };
    ecosim_core::mail::send(&addr, &mail).await.expect("accepted");
    ecosim_core::mail::send(&addr, &mail).await.expect("accepted again");
    let inbox = t.mail_inbox("Mario.Rossi@posta.test").await;
    assert_eq!(inbox.len(), 1, "the same Message-ID is filed once: {inbox:?}");
    assert_eq!(inbox[0]["subject"], "Esito del test è pronto");
    assert_eq!(inbox[0]["body"], ".una riga col punto\r\nseconda riga");
    let bad = ecosim_core::mail::Mail { to: "not-an-address", ..mail };
    assert!(matches!(ecosim_core::mail::send(&addr, &bad).await, Err(ecosim_core::mail::MailError::Permanent(_))));
}
