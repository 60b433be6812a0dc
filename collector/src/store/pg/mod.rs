//! The PostgreSQL store. What connects: `url` (the store URL, parsed),
//! `password` (file, PGPASSWORD, pgpass), `tls` (rustls per sslmode),
//! `connect` (a target that opens connections and pools). What stores:
//! `store` (the runtime bridge, errors, durability), `schema` (versioned
//! migrations) and the tables' code beside them.

pub mod connect;
mod jobs;
pub mod password;
mod records;
mod reports;
mod schema;
mod store;
pub mod tls;
mod traits;
pub mod url;

pub use connect::{ConnectError, PgTarget, target};
pub use schema::SCHEMA_VERSION;
pub use store::PgStore;
pub use traits::NO_BACKUP;
