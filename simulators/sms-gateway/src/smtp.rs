//! A plain SMTP listener (RFC 5321 subset: HELO/EHLO, MAIL FROM, RCPT TO, DATA, RSET,
//! NOOP, QUIT) that files every message into the recipients' mailboxes.
//!
//! Enough for loopback: no TLS, no AUTH, no relaying anywhere. Messages are parsed
//! with `mail-parser`; a message whose `Message-ID` a mailbox already holds is
//! accepted and not filed again, so a sender retrying after a lost answer does not
//! make the citizen read the same mail twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use ecosim_core::journal::NewExchange;
use ecosim_domain::codes::Email;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::state::Gateway;

/// Largest message accepted.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// Serves SMTP on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _)) => {
                        let gw = gw.clone();
                        tokio::spawn(async move {
                            if let Err(e) = session(stream, gw).await {
                                tracing::debug!(error = %e, "smtp session ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "smtp accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// The address inside `MAIL FROM:<...>` / `RCPT TO:<...>`.
fn path_arg(line: &str, verb_len: usize) -> Option<String> {
    let rest = line.get(verb_len..)?.trim();
    let inner = rest.strip_prefix('<').and_then(|r| r.split_once('>')).map(|(a, _)| a).unwrap_or(rest);
    Some(inner.split_whitespace().next().unwrap_or("").to_owned())
}

async fn session(stream: TcpStream, gw: Arc<Gateway>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 ecosim-smtp ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<Email> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-ecosim-smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760".into()
        } else if upper.starts_with("HELO") {
            "250 ecosim-smtp".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = path_arg(cmd, 10);
            rcpts.clear();
            "250 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                "503 MAIL FROM first".into()
            } else {
                match path_arg(cmd, 8).map(|a| Email::parse(&a)) {
                    Some(Ok(addr)) => {
                        rcpts.push(addr);
                        "250 OK".into()
                    }
                    Some(Err(e)) => format!("501 bad recipient: {e}"),
                    None => "501 bad recipient".into(),
                }
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() {
                "503 RCPT TO first".into()
            } else {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let started = Instant::now();
                let data = read_data(&mut lines).await?;
                let reply = match data {
                    Some(data) => {
                        let sender = from.clone().unwrap_or_default();
                        match file(&gw, &sender, &rcpts, &data, started) {
                            Ok(()) => "250 OK queued".to_owned(),
                            Err(e) => format!("451 cannot store the message: {e}"),
                        }
                    }
                    None => "552 message too large".to_owned(),
                };
                from = None;
                rcpts.clear();
                reply
            }
        } else if upper == "RSET" {
            from = None;
            rcpts.clear();
            "250 OK".into()
        } else if upper == "NOOP" {
            "250 OK".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "502 command not implemented".into()
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

/// Reads the DATA section up to the lone dot, undoing dot-stuffing. `None` if too large.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_large = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed in DATA"));
        }
        let content = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(&line);
        if content == b"." {
            return Ok((!too_large).then_some(data));
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if data.len() + content.len() > MAX_MESSAGE {
            too_large = true;
        } else {
            data.extend_from_slice(content);
            data.extend_from_slice(b"\r\n");
        }
    }
}

fn file(gw: &Gateway, sender: &str, rcpts: &[Email], data: &[u8], started: Instant) -> Result<(), String> {
    let parsed = mail_parser::MessageParser::default().parse(data).ok_or("the message cannot be parsed")?;
    let subject = parsed.subject().unwrap_or("").to_owned();
    let body = parsed.body_text(0).map(|b| b.trim_end_matches(['\r', '\n']).to_owned()).unwrap_or_default();
    let message_id = parsed.message_id().map(str::to_owned);
    let now = gw.ctx.clock().now();
    gw.store
        .transaction(|tx| {
            for rcpt in rcpts {
                let mail = crate::store::Mail {
                    from: sender.to_owned(),
                    to: rcpt.as_str().to_owned(),
                    subject: subject.clone(),
                    body: body.clone(),
                    message_id: message_id.clone(),
                    received_at: now.to_string(),
                };
                crate::store::insert_mail(tx, &mail)?;
            }
            Ok::<_, ecosim_core::store::StoreError>(())
        })
        .map_err(|e| e.to_string())?;
    for rcpt in rcpts {
        gw.ctx.journal().record(NewExchange {
            time: Some(now),
            wall_time: None,
            from: sender.to_owned(),
            to: ecosim_core::System::SmsGateway.name().to_owned(),
            method: "SMTP".into(),
            path: format!("RCPT TO:<{rcpt}>"),
            status: 250,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_body: data.to_vec().into(),
            response_body: b"250 OK queued".to_vec().into(),
            fault: None,
            idempotency_key: None,
            note: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_with_or_without_brackets() {
        assert_eq!(path_arg("MAIL FROM:<a@b.it> SIZE=10", 10).as_deref(), Some("a@b.it"));
        assert_eq!(path_arg("RCPT TO: c@d.it", 8).as_deref(), Some("c@d.it"));
    }
}
