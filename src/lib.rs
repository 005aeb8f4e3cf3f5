//! unchained: a Rust backend that replaces a Django 5.2 catalog site in place.
pub mod config;
pub mod db;
pub mod django;
pub mod mail;
pub mod web;
