//! The outbox sender. Every instance runs one: it claims due mails (no two
//! senders get the same row), delivers them over SMTP with lettre, and marks
//! each sent or due again later, backing off. A mail committed just before a
//! crash is delivered after the restart (or by another instance).
use secrecy::ExposeSecret;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::sync::Notify;
use url::Url;

use crate::config::{smtp_tls_param, MailSettings};
use crate::db::outbox::{self, Mail, RESET_TOKEN_SLOT};
use crate::db::{self, recovery, DbPool};
use crate::domain::ResetToken;

/// Mails claimed at once, and how long a claim keeps others off them.
const BATCH: i64 = 10;
const LEASE_SECONDS: i64 = 60;
/// How often the outbox is looked at when nothing wakes the sender.
const POLL: Duration = Duration::from_secs(1);
/// Waits between attempts: 1 s, 2 s, 4 s ... at most 5 minutes; after this
/// many attempts (about half an hour, a reset token's life) it gives up.
const MAX_ATTEMPTS: i32 = 12;
const MAX_BACKOFF_SECONDS: i64 = 300;
/// An SMTP server that does not answer in this long is an attempt failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

enum Delivery {
    Smtp(SmtpTransport),
    /// Development without `mail.smtp_url`: the mail goes to the log.
    Log,
}

pub struct Mailer {
    delivery: Delivery,
    from: Mailbox,
}

impl Mailer {
    /// `None` when mail is off (production without `mail.smtp_url`).
    pub fn new(settings: &MailSettings, log_instead: bool) -> Result<Option<Mailer>, String> {
        let from = settings.from.clone();
        let delivery = match (&settings.smtp_url, &settings.ca_file) {
            (Some(url), ca_file) => {
                Delivery::Smtp(smtp_transport(url.expose_secret(), ca_file.as_deref())?)
            }
            (None, Some(_)) => {
                return Err(
                    "mail.ca_file is set but mail.smtp_url is not (APP__MAIL__SMTP_URL)".into(),
                )
            }
            (None, None) if log_instead => Delivery::Log,
            (None, None) => return Ok(None),
        };
        Ok(Some(Mailer { delivery, from }))
    }

    /// Whether mails go to an SMTP server (not to the log).
    pub fn sends(&self) -> bool {
        matches!(self.delivery, Delivery::Smtp(_))
    }

    /// One SMTP conversation. `Err(retry)` says whether another attempt
    /// could succeed (a bad recipient never will).
    async fn send(&self, mail: &Mail) -> Result<(), (bool, String)> {
        let to = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| (false, format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone().unwrap_or_default())
            .map_err(|e| (false, format!("message: {e}")))?;
        match &self.delivery {
            Delivery::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (!e.is_permanent(), e.to_string())),
            Delivery::Log => {
                log::info!(
                    "mail.smtp_url is not set (development): mail {} to {} not sent:\n{}",
                    mail.id,
                    mail.recipient,
                    mail.body.as_deref().unwrap_or_default()
                );
                Ok(())
            }
        }
    }
}

/// The transport `mail.smtp_url` names (lettre reads the URL); with a
/// `mail.ca_file`, its TLS trusts that file's authorities too.
fn smtp_transport(url: &str, ca_file: Option<&Path>) -> Result<SmtpTransport, String> {
    let builder = SmtpTransport::from_url(url).map_err(|e| format!("mail.smtp_url: {e}"))?;
    let builder = match ca_file {
        Some(path) => builder.tls(tls_trusting(url, path)?),
        None => builder,
    };
    Ok(builder.timeout(Some(SMTP_TIMEOUT)).build())
}

/// The TLS mode the URL asks for, as lettre's `from_url` reads it (`smtps://`,
/// `?tls=required`, `?tls=opportunistic`), with the CAs in `ca_file` added to
/// the roots. A URL without TLS is refused: the file would do nothing.
fn tls_trusting(url: &str, ca_file: &Path) -> Result<Tls, String> {
    let file = |e: String| {
        format!(
            "mail.ca_file {}: {e} (APP__MAIL__CA_FILE)",
            ca_file.display()
        )
    };
    let url = Url::parse(url).map_err(|e| format!("mail.smtp_url: {e}"))?;
    let pem = std::fs::read(ca_file).map_err(|e| file(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(e.to_string()))?;
    if certs.is_empty() {
        return Err(file("holds no PEM certificate".into()));
    }
    let mut params = TlsParameters::builder(url.host_str().unwrap_or_default().to_owned());
    for cert in certs {
        let cert = Certificate::from_der(cert.to_vec()).map_err(|e| file(e.to_string()))?;
        params = params.add_root_certificate(cert);
    }
    let params = params.build_rustls().map_err(|e| file(e.to_string()))?;
    let tls = smtp_tls_param(&url);
    match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => Ok(Tls::Wrapper(params)),
        ("smtp", Some("required")) => Ok(Tls::Required(params)),
        ("smtp", Some("opportunistic")) => Ok(Tls::Opportunistic(params)),
        _ => Err(
            "mail.ca_file is set but mail.smtp_url uses no TLS: use smtps:// or ?tls=required (APP__MAIL__CA_FILE)"
                .into(),
        ),
    }
}

/// Delivers the outbox until the task is aborted; `wake` is notified when a
/// mail is queued, so it leaves at once rather than at the next poll.
pub async fn deliver_outbox(pool: DbPool, mailer: Arc<Mailer>, wake: Arc<Notify>) {
    loop {
        let claimed = db::run(&pool, |conn| outbox::claim(conn, BATCH, LEASE_SECONDS)).await;
        let mails = match claimed {
            Ok(mails) => mails,
            Err(e) => {
                log::warn!("outbox: cannot claim mail: {e}");
                Vec::new()
            }
        };
        let idle = mails.is_empty();
        for mail in mails {
            deliver_one(&pool, &mailer, mail).await;
        }
        if idle {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

async fn deliver_one(pool: &DbPool, mailer: &Arc<Mailer>, mut mail: Mail) {
    let (id, attempts) = (mail.id, mail.attempts);
    let outcome = match with_reset_token(pool, &mut mail).await {
        Ok(()) => mailer.send(&mail).await,
        Err(refusal) => Err(refusal),
    };
    let marked = match outcome {
        Ok(()) => db::run(pool, move |conn| outbox::mark_sent(conn, id)).await,
        Err((retry, error)) => {
            let retry_seconds = (retry && attempts < MAX_ATTEMPTS)
                .then(|| (1i64 << (attempts - 1).clamp(0, 16)).min(MAX_BACKOFF_SECONDS));
            log::warn!(
                "outbox: mail {id} not delivered (attempt {attempts}): {error}; {}",
                match retry_seconds {
                    Some(s) => format!("next attempt in {s} s"),
                    None => "giving up".into(),
                }
            );
            db::run(pool, move |conn| {
                outbox::mark_failed(conn, id, retry_seconds, &error)
            })
            .await
        }
    };
    if let Err(e) = marked {
        // The lease runs out and the mail is claimed again: sent twice at
        // worst, never lost.
        log::warn!("outbox: mail {id} could not be marked: {e}");
    }
}

/// A reset mail gets its token now, held only in memory until it is sent:
/// each attempt makes a new one (the link of an attempt that failed dies).
/// A reset that is no longer live is not mailed.
async fn with_reset_token(pool: &DbPool, mail: &mut Mail) -> Result<(), (bool, String)> {
    let Some(user_id) = mail.reset_for else {
        return Ok(());
    };
    let ResetToken { token, hash } = ResetToken::generate();
    let live = db::run(pool, move |conn| {
        recovery::issue_token(conn, user_id, &hash)
    })
    .await
    .map_err(|e| (true, format!("reset token: {e}")))?;
    if !live {
        return Err((
            false,
            "the reset is no longer live (spent, expired, outlived by a password change, or the account disabled)".into(),
        ));
    }
    mail.body = mail
        .body
        .as_deref()
        .map(|body| body.replace(RESET_TOKEN_SLOT, &token));
    Ok(())
}
