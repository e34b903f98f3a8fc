//! Authentication: password hashing, JWTs, the bearer middleware and `CurrentUser`.
pub mod bearer;
pub mod extractor;
mod idle_cgroup;
pub mod jwt;
pub mod password;
pub mod rate_limit;
pub mod require_role;

pub use extractor::CurrentUser;
