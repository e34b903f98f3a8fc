//! Authentication: password hashing, JWTs, the bearer middleware and `CurrentUser`.
pub mod bearer;
pub mod extractor;
pub mod jwt;
pub mod login;
pub mod password;
pub mod require_role;

pub use extractor::CurrentUser;
