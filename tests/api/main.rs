//! One test binary for the whole HTTP API (links once, runs tests in parallel).
mod cli;
mod cluster;
mod config;
mod errors;
mod health;
mod helpers;
mod migrations;
