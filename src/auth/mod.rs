//! Authentication: password hashing, JWTs and their keys, the bearer middleware and `CurrentUser`.
pub mod bearer;
pub mod extractor;
pub mod gate;
pub mod grant;
pub mod jwt;
pub mod keys;
pub mod login;
pub mod low_s;
pub mod mfa;
pub mod password;
pub mod recovery;
pub mod require_role;
pub mod state;

pub use extractor::CurrentUser;
pub use state::AppState;
