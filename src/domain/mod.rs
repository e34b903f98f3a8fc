//! Input parsed once into types that can only hold valid values.
mod email;
mod password;
mod role;

pub use email::Email;
pub use password::Password;
pub use role::Role;
