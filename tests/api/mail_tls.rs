//! Recovery mail over TLS to a real SMTP server with a private CA: STARTTLS
//! and implicit TLS deliver when `mail.ca_file` vouches for the server, and
//! nothing is ever sent to a server no trusted CA vouches for, nor in the
//! clear when the URL asks for TLS.
use std::path::PathBuf;

use secrecy::SecretString;
use taskgate::domain::Role;

use crate::helpers::{spawn_app_with, TestApp};
use crate::recovery::{accepted, DELIVERY};
use crate::smtp::{recipient, tls_of, SmtpServer, Tls};

async fn app_mailing(url: String, ca_file: Option<PathBuf>) -> TestApp {
    spawn_app_with(|s| {
        s.mail.smtp_url = Some(SecretString::from(url));
        s.mail.ca_file = ca_file;
    })
    .await
}

/// Asks for a reset mail and waits until the sender has tried (and failed)
/// at least once; the mail is still in the outbox, unsent.
async fn forgot_and_see_it_fail(app: &TestApp) {
    let ada = app.signup_and_login(Role::User).await;
    accepted(app.forgot(&ada.email).await).await;
    app.count_soon(
        "SELECT count(*) FROM outbox WHERE attempts >= 1 AND last_error IS NOT NULL",
        1,
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts >= 1 AND last_error IS NOT NULL"),
        1,
        "one attempt failed and the mail waits"
    );
}

#[tokio::test]
async fn reset_mail_goes_over_starttls_and_smtps_to_a_server_of_a_private_ca() {
    for tls in [Tls::Starttls, Tls::Wrapper] {
        let smtp = SmtpServer::start_with(tls);
        let app = app_mailing(smtp.url(), Some(smtp.ca_file())).await;
        let ada = app.signup_and_login(Role::User).await;
        accepted(app.forgot(&ada.email).await).await;

        let messages = smtp.wait_for(1, DELIVERY).await;
        assert_eq!(recipient(&messages[0]), ada.email, "{tls:?}");
        assert!(
            tls_of(&messages[0]).starts_with("TLSv1."),
            "{tls:?}: came over {}",
            tls_of(&messages[0])
        );
        assert_eq!(
            app.count_soon(
                "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND body IS NULL",
                1
            )
            .await,
            1,
            "{tls:?}"
        );
    }
}

#[tokio::test]
async fn no_mail_goes_to_a_server_whose_certificate_no_trusted_ca_signed() {
    for tls in [Tls::Starttls, Tls::Wrapper] {
        let smtp = SmtpServer::start_with(tls);
        // The public roots only: the server's CA is not among them.
        let app = app_mailing(smtp.url(), None).await;
        forgot_and_see_it_fail(&app).await;
        assert_eq!(
            app.count("SELECT count(*) FROM outbox WHERE last_error ILIKE '%certificate%'"),
            1,
            "{tls:?}: the error names the certificate"
        );
        assert!(smtp.messages().is_empty(), "{tls:?}");
    }
}

#[tokio::test]
async fn a_url_that_requires_tls_never_falls_back_to_plain_smtp() {
    let plain = SmtpServer::start(); // offers no STARTTLS
    let url = format!("smtp://127.0.0.1:{}?tls=required", plain.port);
    let other = SmtpServer::start_with(Tls::Starttls); // only for a CA file
    for ca_file in [None, Some(other.ca_file())] {
        let app = app_mailing(url.clone(), ca_file.clone()).await;
        forgot_and_see_it_fail(&app).await;
        assert!(plain.messages().is_empty(), "ca_file {ca_file:?}");
    }
}
