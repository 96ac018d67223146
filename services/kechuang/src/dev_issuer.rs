//! The development token issuer of `kechuang up`: its key (created once, kept under the
//! user's state directory) signs the tokens of `kechuang token`, the demo and the bench, and
//! its key set is served over HTTP on loopback, so that the services verify development tokens
//! exactly as production ones, by fetching the issuer's JWKS.

use axum::Router;
use axum::routing::get;
use kechuang_platform::Settings;
use kechuang_platform::auth::Issuer;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The JWKS path, as identity providers commonly serve it.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Serves `issuer`'s key set on a free loopback port until `shutdown`; its URL.
pub async fn serve(issuer: &Issuer, shutdown: CancellationToken) -> anyhow::Result<String> {
    let jwks = issuer.jwks();
    let app = Router::new().route(
        JWKS_PATH,
        get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}{JWKS_PATH}", listener.local_addr()?);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the development issuer's key set stopped");
        }
    });
    Ok(url)
}

/// `settings` with the development issuer in charge of tokens when no identity provider is
/// configured (nothing to do when one is): its issuer name and its key set's URL.
pub async fn take_charge(
    settings: &mut Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<String>> {
    if settings.token_jwks_url.is_some() || settings.token_jwks_file.is_some() {
        return Ok(None);
    }
    settings.token_issuer = kechuang_platform::auth::DEVELOPMENT_ISSUER.into();
    let issuer = settings.issuer()?;
    let url = serve(&issuer, shutdown).await?;
    settings.token_jwks_url = Some(url.clone());
    Ok(Some(url))
}
