//! taskgate: a JWT-auth task service (Actix-web, Diesel, PostgreSQL).
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod threads;
