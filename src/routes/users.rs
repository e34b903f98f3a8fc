//! Signup and the caller's own account.
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::actor::Actor;
use super::doc;
use super::json::{double_option, JsonBody};
use super::views::UserView;
use crate::auth::login;
use crate::auth::login::Client;
use crate::auth::password::new_password;
use crate::auth::AppState;
use crate::db::users::{self, NewUser};
use crate::db::{self, account, audit};
use crate::domain::{FullName, NewAccount, Role};
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    pub email: String,
    /// 8 characters to 72 bytes; not a common password.
    #[schema(value_type = String, min_length = 8, max_length = 72, example = "correct horse battery")]
    pub password: SecretString,
    #[schema(schema_with = doc::full_name)]
    pub full_name: Option<String>,
}

/// POST /users/signup
#[utoipa::path(post, path = "/users/signup", tag = "users", request_body = SignupBody,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 422, description = "Invalid email, password or name", body = ErrorBody),
    ))]
pub async fn signup(
    state: web::Data<AppState>,
    caller: Client,
    body: JsonBody<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let NewAccount {
        email,
        password,
        full_name,
    } = NewAccount::parse(&body.email, body.password, body.full_name)?;
    let hash = state.hasher.hash_for(caller.key, &password).await?;
    let ip = caller.ip;
    let user = db::run(&state.pool, move |conn| {
        let new = NewUser::new(&email, &hash, full_name.as_deref(), Role::User);
        users::insert_recorded(conn, &new, |user| {
            audit::NewEvent::by_self(audit::AuditKind::Signup, user.id, ip.as_deref())
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(UserView::from_row(&user)?))
}

/// GET /users/me and GET /me (its alias)
#[utoipa::path(get, path = "/users/me", tag = "users", responses((status = 200, description = "The caller", body = UserView)))]
pub async fn me(user: Actor) -> HttpResponse {
    HttpResponse::Ok().json(UserView::new(&user.user, user.role))
}

/// An absent `full_name` leaves the name as it is; `null` or blank clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeBody {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = doc::full_name)]
    pub full_name: Option<Option<String>>,
}

/// PATCH /users/me
#[utoipa::path(patch, path = "/users/me", tag = "users", request_body = UpdateMeBody,
    responses((status = 200, description = "Updated", body = UserView), (status = 422, description = "Invalid name", body = ErrorBody)))]
pub async fn update_me(
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<UpdateMeBody>,
) -> Result<HttpResponse, ApiError> {
    let Some(full_name) = body.into_inner().full_name else {
        return Ok(HttpResponse::Ok().json(UserView::new(&user.user, user.role)));
    };
    let full_name = FullName::parse(full_name).map_err(|e| ApiError::field("full_name", e))?;
    let id = user.id();
    let updated = db::run(&state.pool, move |conn| {
        let changes = users::UserChanges {
            full_name: Some(full_name),
            ..Default::default()
        };
        users::update(conn, id, &changes)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from_row(&updated)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// The same rules as at signup.
    #[schema(value_type = String, min_length = 8, max_length = 72)]
    pub new_password: SecretString,
}

/// POST /users/me/password
#[utoipa::path(post, path = "/users/me/password", tag = "users", request_body = ChangePasswordBody,
    responses((status = 204, description = "Changed; every session of the user is revoked"), (status = 422, description = "Wrong current password, or the new one breaks a rule", body = ErrorBody)))]
pub async fn change_password(
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let client = user.checking();
    // Checked first: a new password that breaks a rule costs no hash and no attempt.
    let password = new_password(body.new_password)?;
    let (place, _) =
        login::check_current_password(&state, user.id(), &body.current_password, &client).await?;
    let hash = state.hasher.hash(&place, &password).await?;
    drop(place);
    let (user_id, ip) = (user.id(), user.client().ip);
    db::run(&state.pool, move |conn| {
        account::change_password_recorded(conn, user_id, &hash, ip.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body logged by mistake (`{:?}`) shows neither password.
    #[test]
    fn debug_of_a_password_body_shows_no_password() {
        let body: ChangePasswordBody = serde_json::from_str(
            r#"{"current_password": "old-Secret-1", "new_password": "new-Secret-2"}"#,
        )
        .unwrap();
        let shown = format!("{body:?}");
        assert!(!shown.contains("Secret-"), "{shown}");
        let body: SignupBody =
            serde_json::from_str(r#"{"email": "a@example.com", "password": "new-Secret-3"}"#)
                .unwrap();
        let shown = format!("{body:?}");
        assert!(
            shown.contains("a@example.com") && !shown.contains("Secret-"),
            "{shown}"
        );
    }
}
