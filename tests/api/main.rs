//! One test binary for the whole HTTP API (links once, runs tests in parallel).
mod access;
mod admin;
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
mod reports;
mod sessions;
mod tasks;
mod users;
