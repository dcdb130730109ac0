//! HTTP routes: SMS (`/sms/v1`) and the mail inboxes (`/mail/v1`).

pub(crate) mod mail;
pub(crate) mod sms;
