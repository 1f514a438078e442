//! Confirming destinations (a single-use link by mail, IRC or Matrix) and one-click unsubscribe.

use axum::extract::State;
use axum::Json;
use fmn_aws::confirmations::{Pending, TOKEN_TTL_SECS};
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::QueueName;
use fmn_core::irc_line::ConfirmationJob;
use fmn_core::matrix::PreparedMessage;
use fmn_core::prefs::{Destination, DestinationKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::change;
use super::extract::{Body, P};
use crate::error::{ApiError, ErrorBody};
use crate::schema::Kind;
use crate::state::AppState;

/// Tokens are 43 characters; anything much longer is not one of ours.
const MAX_TOKEN: usize = 256;

/// Counts a confirmation against the allowances (429 beyond one), then sends it.
pub async fn send_confirmation(
    state: &AppState,
    user: &str,
    d: &Destination,
) -> Result<u64, ApiError> {
    state
        .confirmations
        .reserve(user, d.kind, &d.address)
        .await?;
    deliver_confirmation(state, user, d).await
}

/// Issues a token for `user`'s destination `d` and sends the link: a mail through SES v2, a
/// confirmation job on the IRC queue, or a direct message through the Matrix queue. Returns
/// when the link expires (epoch seconds). The allowance must have been reserved.
pub async fn deliver_confirmation(
    state: &AppState,
    user: &str,
    d: &Destination,
) -> Result<u64, ApiError> {
    let (token, expires) = state.confirmations.issue(user, d).await?;
    let ctx = &state.settings.mail.context;
    let url = format!("{}/confirm/{token}", ctx.public_url.trim_end_matches('/'));
    match d.kind {
        DestinationKind::Email => {
            let now = fmn_aws::dynamo::now_secs() as i64;
            let mail = fmn_core::render::confirmation::render(
                ctx,
                &d.address,
                user,
                &url,
                TOKEN_TTL_SECS / 3600,
                now,
            )
            .map_err(|e| ApiError::invalid("address", e.to_string()))?;
            state
                .mailer
                .send(&d.address, &mail.raw)
                .await
                .map_err(|e| ApiError::internal(&e))?;
        }
        DestinationKind::Irc => {
            let job = ConfirmationJob {
                job_id: format!("confirm-{}", uuid::Uuid::new_v4().simple()),
                user: user.to_string(),
                nick: d.address.clone(),
                accept_url: url,
                reject_url: None,
                destination: Some(d.id.clone()),
            };
            enqueue_one(state, QueueName::Irc, job.job_id.clone(), job.to_json()).await?;
        }
        DestinationKind::Matrix => {
            let job = PreparedMessage {
                job_id: format!("confirm-{}", uuid::Uuid::new_v4().simple()),
                user: user.to_string(),
                destination: "confirmation".into(),
                user_id: d.address.clone(),
                text: fmn_core::matrix::confirmation(user, &url, TOKEN_TTL_SECS / 3600),
            };
            enqueue_one(state, QueueName::Matrix, job.job_id.clone(), job.to_json()).await?;
        }
    }
    tracing::info!(user, destination = %d.id, kind = d.kind.as_str(), "confirmation sent");
    Ok(expires)
}

/// Puts one confirmation job on a delivery queue.
async fn enqueue_one(
    state: &AppState,
    queue: QueueName,
    job_id: String,
    body: String,
) -> Result<(), ApiError> {
    let queue = state
        .clients
        .queue_url(queue)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    enqueue_jobs(&state.clients.sqs, &queue, &[QueuedJob { job_id, body }])
        .await
        .map_err(|e| ApiError::internal(&e))
}

fn gone() -> ApiError {
    ApiError::gone("this link was already used, replaced by a newer one, or has expired")
}

async fn pending(state: &AppState, token: &str) -> Result<Pending, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(gone());
    }
    state.confirmations.lookup(token).await?.ok_or_else(gone)
}

/// What a confirmation link is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmationInfo {
    /// The account that asked.
    pub user: String,
    pub kind: Kind,
    pub address: String,
    /// Epoch seconds.
    pub expires: u64,
}

#[utoipa::path(get, path = "/api/v1/confirm/{token}", tag = "confirmation",
    params(("token" = String, Path, description = "The token from the link")),
    responses((status = 200, body = ConfirmationInfo),
        (status = 410, description = "Used, replaced or expired", body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    P(token): P<String>,
) -> Result<Json<ConfirmationInfo>, ApiError> {
    let p = pending(&state, &token).await?;
    Ok(Json(ConfirmationInfo {
        user: p.user,
        kind: Kind::from(p.kind),
        address: p.address,
        expires: p.expires_at,
    }))
}

/// The answer of the address's owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmAnswer {
    pub accept: bool,
}

/// Whether the destination is now confirmed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Confirmed {
    pub confirmed: bool,
}

#[utoipa::path(post, path = "/api/v1/confirm/{token}", tag = "confirmation",
    params(("token" = String, Path, description = "The token from the link")),
    request_body = ConfirmAnswer,
    responses((status = 200, description = "Accepted or rejected; the link is used up", body = Confirmed),
        (status = 410, description = "Used, replaced or expired", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn answer(
    State(state): State<AppState>,
    P(token): P<String>,
    Body(body): Body<ConfirmAnswer>,
) -> Result<Json<Confirmed>, ApiError> {
    let p = pending(&state, &token).await?;
    if !state.confirmations.consume(&token, &p).await? {
        return Err(gone());
    }
    if !body.accept {
        tracing::info!(user = %p.user, destination = %p.destination, "confirmation rejected");
        return Ok(Json(Confirmed { confirmed: false }));
    }
    change(&state, &p.user, |prefs| {
        let d = prefs
            .destinations
            .iter_mut()
            .find(|d| d.id == p.destination && d.kind == p.kind && d.address == p.address)
            .ok_or_else(gone)?;
        d.confirmed = true;
        Ok(())
    })
    .await
    .map_err(|e| if e.code == "not_found" { gone() } else { e })?;
    tracing::info!(user = %p.user, destination = %p.destination, "destination confirmed");
    Ok(Json(Confirmed { confirmed: true }))
}

/// The destination that no longer receives anything.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unsubscribed {
    pub user: String,
    pub destination: String,
    pub confirmed: bool,
}

#[utoipa::path(post, path = "/api/v1/unsubscribe/{token}", tag = "confirmation",
    params(("token" = String, Path, description = "The token of a mail's List-Unsubscribe link")),
    responses((status = 200, description = "The destination is disabled (unconfirmed)", body = Unsubscribed),
        (status = 404, description = "Not a valid token, or no such destination", body = ErrorBody)))]
/// One-click unsubscribe (RFC 8058): the body (`List-Unsubscribe=One-Click`, form-encoded, or
/// nothing) is not read.
pub async fn unsubscribe(
    State(state): State<AppState>,
    P(token): P<String>,
) -> Result<Json<Unsubscribed>, ApiError> {
    let secret = &state.settings.mail.context.unsubscribe_secret;
    let (user, destination) = fmn_core::unsubscribe::verify_token(secret, &token)
        .filter(|_| token.len() <= MAX_TOKEN)
        .ok_or_else(|| ApiError::not_found("not a valid unsubscribe link"))?;
    change(&state, &user, |p| {
        let d = p
            .destinations
            .iter_mut()
            .find(|d| d.id == destination)
            .ok_or_else(|| ApiError::not_found("that destination no longer exists"))?;
        d.confirmed = false;
        // Confirming it again is its owner's now.
        d.verified_by = None;
        Ok(())
    })
    .await?;
    tracing::info!(%user, %destination, "unsubscribed (one-click)");
    Ok(Json(Unsubscribed {
        user,
        destination,
        confirmed: false,
    }))
}
