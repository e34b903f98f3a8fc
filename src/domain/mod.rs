//! Input parsed once into types that can only hold valid values.
mod account;
mod client_key;
mod email;
mod field_errors;
mod full_name;
pub mod password;
mod proxies;
mod reset_token;
mod role;
pub mod task;
pub mod text;

pub use account::NewAccount;
pub use client_key::ClientKey;
pub use email::{Email, EMAIL_MAX};
pub use field_errors::FieldErrors;
pub use full_name::{FullName, FULL_NAME_MAX};
pub use password::Password;
pub use proxies::TrustedProxies;
pub use reset_token::{parse_reset_token, ResetToken};
pub use role::Role;
pub use task::TaskTitle;
