//! A minimal SMTP client, for simulators that send e-mail (the SAR, Sistema TS).
//!
//! One message per connection: EHLO, MAIL FROM, RCPT TO, DATA, QUIT. Plain text,
//! UTF-8 (8BITMIME), a `Message-ID` the receiver can use to drop duplicates.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a mail was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server could not be reached or the connection broke: try again later.
    #[error("smtp connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with a transient (4xx) code: try again later.
    #[error("smtp transient refusal: {0}")]
    Transient(String),
    /// The server refused for good (5xx).
    #[error("smtp refusal: {0}")]
    Permanent(String),
}

/// One e-mail.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    /// Envelope and header sender.
    pub from: &'a str,
    /// Recipient.
    pub to: &'a str,
    /// Subject (UTF-8).
    pub subject: &'a str,
    /// Plain-text body (UTF-8).
    pub body: &'a str,
    /// `Message-ID` without angle brackets.
    pub message_id: &'a str,
}

async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, ok: u16) -> Result<(), MailError> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(MailError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed")));
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) == Some(&b'-') {
            continue; // multi-line reply
        }
        return match code {
            c if c == ok => Ok(()),
            400..=499 => Err(MailError::Transient(line.trim_end().to_owned())),
            _ => Err(MailError::Permanent(line.trim_end().to_owned())),
        };
    }
}

/// RFC 2047 encoded-word for a non-ASCII header value.
fn header_text(text: &str) -> String {
    use base64::Engine;
    if text.is_ascii() {
        text.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(text))
    }
}

/// Sends `mail` to the SMTP server at `addr` (`host:port`).
pub async fn send(addr: &str, mail: &Mail<'_>) -> Result<(), MailError> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    expect(&mut reader, 220).await?;
    for (command, ok) in [
        ("EHLO ecosim\r\n".to_owned(), 250),
        (format!("MAIL FROM:<{}>\r\n", mail.from), 250),
        (format!("RCPT TO:<{}>\r\n", mail.to), 250),
        ("DATA\r\n".to_owned(), 354),
    ] {
        write.write_all(command.as_bytes()).await?;
        expect(&mut reader, ok).await?;
    }
    let body: String =
        mail.body.lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}.\r\n",
        from = mail.from,
        to = mail.to,
        subject = header_text(mail.subject),
        id = mail.message_id,
    );
    write.write_all(message.as_bytes()).await?;
    expect(&mut reader, 250).await?;
    write.write_all(b"QUIT\r\n").await?;
    let _ = expect(&mut reader, 221).await;
    Ok(())
}
