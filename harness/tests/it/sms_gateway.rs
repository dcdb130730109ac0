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

/// A raw SMTP session: each command's full reply (every line of a multi-line one).
struct Smtp {
    lines: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Smtp {
    async fn open(addr: &str) -> (Self, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (read, write) = stream.into_split();
        let mut s = Self { lines: tokio::io::BufReader::new(read), write };
        let greeting = s.reply().await;
        (s, greeting)
    }

    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), self.lines.read_line(&mut line))
                .await
                .expect("a reply in time")
                .expect("read");
            assert!(n > 0, "the server closed the session after {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, raw: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        self.write.write_all(raw).await.expect("write");
        self.write.write_all(b"\r\n").await.expect("write");
        self.reply().await
    }
}

#[tokio::test]
async fn smtp_keeps_rfc_5321_order_and_limits_and_answers_what_it_refuses() {
    let t = spawn_ecosystem().await;
    let (mut s, greeting) = Smtp::open(&t.eco.smtp_addr().to_string()).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(s.send(b"MAIL FROM:<lab@asl.test>").await.starts_with("503"), "MAIL before HELO");
    assert!(s.send(b"EHLO lab.test").await.starts_with("250"));
    let long_path = format!("MAIL FROM:<{}@asl.test>", "a".repeat(300));
    assert!(s.send(long_path.as_bytes()).await.starts_with("501"), "a 300-octet sender");
    let huge = format!("MAIL FROM:<{}@asl.test>", "b".repeat(100 * 1024));
    assert!(s.send(huge.as_bytes()).await.starts_with("500"), "a 100 KB command line");
    assert!(s.send(&[0x4d, 0x41, 0xff, 0xfe, 0x49, 0x4c]).await.starts_with("500"), "not UTF-8, answered");
    assert!(s.send(b"NOOP").await.starts_with("250"), "the session goes on");
    assert!(s.send(b"MAIL FROM:<lab@asl.test>").await.starts_with("250"));
    assert!(s.send(b"MAIL FROM:<other@asl.test>").await.starts_with("503"), "a second MAIL without RSET");
    for i in 0..100 {
        let rcpt = format!("RCPT TO:<citizen{i}@posta.test>");
        assert!(s.send(rcpt.as_bytes()).await.starts_with("250"), "recipient {i}");
    }
    assert!(s.send(b"RCPT TO:<citizen100@posta.test>").await.starts_with("452"), "the 101st recipient");
    assert!(s.send(b"DATA").await.starts_with("354"));
    let message = "From: lab@asl.test\r\nSubject: Esito\r\nMessage-ID: <m-100@asl.test>\r\n\r\nIl tuo esito\r\n.";
    assert!(s.send(message.as_bytes()).await.starts_with("250"));
    assert!(s.send(b"QUIT").await.starts_with("221"));

    for who in ["citizen0@posta.test", "citizen99@posta.test"] {
        let inbox = t.mail_inbox(who).await;
        assert_eq!(inbox.len(), 1, "{who}: {inbox:?}");
        assert_eq!(inbox[0]["body"], "Il tuo esito");
    }
    assert!(t.mail_inbox("citizen100@posta.test").await.is_empty());
    // Stored once for its 100 recipients, and journaled once.
    let state = t.get_json(ecosim_core::System::SmsGateway, "/_admin/state").await;
    let held = &state["simulator"];
    assert_eq!((held["mail_contents"].as_u64(), held["mailbox"].as_u64()), (Some(1), Some(100)), "{state}");
    let smtp: Vec<_> =
        t.eco.context().journal().since(0).exchanges.into_iter().filter(|e| e.method == "SMTP").collect();
    assert_eq!(smtp.len(), 1);
}
