//! A plain SMTP listener (RFC 5321 subset: HELO/EHLO, MAIL FROM, RCPT TO, DATA, RSET,
//! NOOP, QUIT) that files every message into the recipients' mailboxes.
//!
//! Enough for loopback: no TLS, no AUTH, no relaying anywhere. Messages are parsed
//! with `mail-parser`; a message whose `Message-ID` a mailbox already holds is
//! accepted and not filed again, so a sender retrying after a lost answer does not
//! make the citizen read the same mail twice.
//!
//! RFC 5321's order and limits hold: HELO/EHLO before MAIL (503), one MAIL per
//! transaction until DATA or RSET (503), a command line of at most 512 octets and a
//! path of at most 256 (500/501), at most 100 recipients per message (452), a
//! message of at most 10 MiB (552); a command that is not UTF-8 is answered 500 and
//! the session goes on; a session idle for 5 minutes is closed (421). A message is
//! stored once, whatever the number of its recipients, and journaled once.

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

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4).
const MAX_COMMAND: usize = 512;

/// Longest reverse or forward path (RFC 5321 4.5.3.1.3).
const MAX_PATH: usize = 256;

/// Most recipients of one message (RFC 5321 4.5.3.1.8's minimum to accept).
const MAX_RECIPIENTS: usize = 100;

/// Longest wait for a command (RFC 5321 4.5.3.2.7 asks at least 5 minutes).
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

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

/// One command line as read.
enum Command {
    /// The connection closed.
    Closed,
    /// Over [`MAX_COMMAND`] octets (the rest of the line was read and dropped).
    TooLong,
    /// Not UTF-8.
    NotText,
    /// A command, without its line ending.
    Line(String),
}

/// Reads one line (up to and with its `\n`), never holding more than `max` octets
/// of it: `None` when the connection closed first, else the line (empty when it
/// was longer than `max`: the rest was read and dropped) and whether it was.
async fn read_capped<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut R,
    max: usize,
) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = lines.fill_buf().await?;
        if buf.is_empty() {
            return Ok(None);
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if too_long || line.len() + n > max {
            too_long = true;
            line.clear();
        } else {
            line.extend_from_slice(chunk);
        }
        lines.consume(n);
        if done {
            return Ok(Some((line, too_long)));
        }
    }
}

/// Reads one command line, never holding more than [`MAX_COMMAND`] octets of it.
async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R) -> std::io::Result<Command> {
    let Some((line, too_long)) = read_capped(lines, MAX_COMMAND).await? else { return Ok(Command::Closed) };
    if too_long {
        return Ok(Command::TooLong);
    }
    let text = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(&line);
    Ok(String::from_utf8(text.to_vec()).map_or(Command::NotText, Command::Line))
}

/// Where a session stands (RFC 5321 4.1.4's order).
struct Transaction {
    greeted: bool,
    from: Option<String>,
    rcpts: Vec<Email>,
}

impl Transaction {
    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }
}

async fn session(stream: TcpStream, gw: Arc<Gateway>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 ecosim-smtp ESMTP ready\r\n").await?;
    let mut t = Transaction { greeted: false, from: None, rcpts: Vec::new() };
    loop {
        let cmd = match tokio::time::timeout(COMMAND_TIMEOUT, read_command(&mut lines)).await {
            Err(_) => {
                write.write_all(b"421 4.4.2 idle too long, closing\r\n").await?;
                return Ok(());
            }
            Ok(read) => read?,
        };
        let cmd = match cmd {
            Command::Closed => return Ok(()),
            Command::TooLong => {
                write.write_all(b"500 5.5.2 line too long: at most 512 octets\r\n").await?;
                continue;
            }
            Command::NotText => {
                write.write_all(b"500 5.5.2 the command is not UTF-8 text\r\n").await?;
                continue;
            }
            Command::Line(line) => line,
        };
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            t.greeted = true;
            t.reset();
            "250-ecosim-smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760".into()
        } else if upper.starts_with("HELO") {
            t.greeted = true;
            t.reset();
            "250 ecosim-smtp".into()
        } else if upper.starts_with("MAIL FROM:") {
            match path_arg(&cmd, 10) {
                _ if !t.greeted => "503 5.5.1 send HELO or EHLO first".into(),
                _ if t.from.is_some() => "503 5.5.1 a transaction is open: DATA or RSET first".into(),
                Some(path) if path.len() > MAX_PATH => "501 5.1.7 the sender path is over 256 octets".into(),
                path => {
                    t.from = path;
                    t.rcpts.clear();
                    "250 OK".into()
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            if t.from.is_none() {
                "503 5.5.1 MAIL FROM first".into()
            } else if t.rcpts.len() >= MAX_RECIPIENTS {
                "452 4.5.3 too many recipients: at most 100 per message".into()
            } else {
                match path_arg(&cmd, 8).map(|a| Email::parse(&a)) {
                    Some(Ok(addr)) => {
                        t.rcpts.push(addr);
                        "250 OK".into()
                    }
                    Some(Err(e)) => format!("501 bad recipient: {e}"),
                    None => "501 bad recipient".into(),
                }
            }
        } else if upper == "DATA" {
            if t.rcpts.is_empty() {
                "503 RCPT TO first".into()
            } else {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let started = Instant::now();
                let data = read_data(&mut lines).await?;
                let reply = match data {
                    Some(data) => {
                        let sender = t.from.clone().unwrap_or_default();
                        match file(&gw, &sender, &t.rcpts, &data, started) {
                            Ok(()) => "250 OK queued".to_owned(),
                            Err(e) => format!("451 cannot store the message: {e}"),
                        }
                    }
                    None => "552 message too large".to_owned(),
                };
                t.reset();
                reply
            }
        } else if upper == "RSET" {
            t.reset();
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

/// Reads the DATA section up to the lone dot, undoing dot-stuffing. `None` if too
/// large (the rest is read and dropped, never held).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_large = false;
    loop {
        let Some((line, too_long)) = read_capped(lines, MAX_MESSAGE + 2).await? else {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed in DATA"));
        };
        let content = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(&line);
        if content == b"." && !too_long {
            return Ok((!too_large).then_some(data));
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if too_long || data.len() + content.len() > MAX_MESSAGE {
            too_large = true;
            data = Vec::new();
        } else if !too_large {
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
    let to: Vec<String> = rcpts.iter().map(|r| r.as_str().to_owned()).collect();
    let received_at = now.to_string();
    let mail = crate::store::NewMail {
        from: sender,
        to: &to,
        subject: &subject,
        body: &body,
        message_id: message_id.as_deref(),
        received_at: &received_at,
    };
    gw.store
        .transaction(|tx| Ok::<_, ecosim_core::store::StoreError>(crate::store::insert_mail(tx, &mail)?))
        .map_err(|e| e.to_string())?;
    // One exchange per message, naming every recipient.
    gw.ctx.journal().record(NewExchange {
        time: Some(now),
        wall_time: None,
        from: sender.to_owned(),
        to: ecosim_core::System::SmsGateway.name().to_owned(),
        method: "SMTP".into(),
        path: format!("RCPT TO:<{}>", to.join(">,<")),
        status: 250,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_body: data.to_vec().into(),
        response_body: b"250 OK queued".to_vec().into(),
        fault: None,
        idempotency_key: None,
        note: None,
    });
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
