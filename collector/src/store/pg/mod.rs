//! The PostgreSQL store. What connects: `url` (the store URL, parsed),
//! `password` (file, PGPASSWORD, pgpass), `tls` (rustls per sslmode),
//! `connect` (a target that opens connections and pools).

pub mod connect;
pub mod password;
pub mod tls;
pub mod url;

pub use connect::{ConnectError, PgTarget, target};
