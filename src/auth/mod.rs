//! Authentication: password hashing (and, next, tokens and the bearer middleware).
pub mod password;
