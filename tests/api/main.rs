//! One test binary for the whole HTTP API (links once, runs tests in parallel).
mod bearer;
mod cli;
mod cluster;
mod config;
mod errors;
mod health;
mod helpers;
mod lockout;
mod login;
mod migrations;
mod sessions;
mod users;
