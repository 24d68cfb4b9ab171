//! Flywheel's system of record.
//!
//! Owns the tables (events, identities, profiles and their traits, orders and
//! lines, order adjustments, products, write keys, settings) and the only SQL in
//! the product. Two backends pass one test suite: SQLite (embedded default, WAL,
//! one file under `--data-dir`) and PostgreSQL (`--store postgres://…`). Both use
//! blocking drivers behind the [`conn::Conn`] seam; the async methods of [`Store`]
//! run them on tokio's blocking pool. Migrations are embedded and applied by
//! [`Store::open`].
//!
//! Writes arrive as whole batches ([`Store::apply`]) in one transaction each, so a
//! batch is stored entirely or not at all.

pub mod activity;
pub mod analytics;
pub mod audience;
pub mod batch_log;
pub mod callback_replays;
mod checkpoint;
mod column_enum;
mod commerce;
pub mod conn;
pub mod coupons;
pub mod dead_letters;
pub mod flash;
pub mod groups;
pub mod identity_cache;
pub mod journeys;
mod keys;
pub mod leases;
pub mod log_cursor;
pub mod loyalty;
pub mod member_activity;
mod migrate;
pub mod order_hooks;
pub mod person;
pub mod points_exchanges;
mod pool;
pub mod postgres;
pub mod read;
pub mod redis_link;
pub mod referrals;
pub mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timers;
pub mod transitions;
mod write;

use crate::conn::Sql;
use std::path::Path;
use std::sync::Arc;

use flywheel_core::{
    Event, Fen, Identity, Order, OrderAdjustment, OrderLine, OrderStatus, Product, Profile, ProfileId,
    ProfileSummary, Timestamp,
};
use serde::Serialize;

pub use checkpoint::{WalHealth, WalLimit};
pub use keys::{hash_secret, new_secret, KeyScope};
pub use sqlite::Synchronous;

use conn::{in_write_tx, Conn, Dialect};
use pool::Pool;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened or reached.
    #[error("cannot open store: {0}")]
    Open(String),
    /// The connection broke.
    #[error("database connection lost: {0}")]
    Connection(String),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(String),
    /// Stored data did not have the expected shape.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A page cursor was not one this store handed out.
    #[error("invalid cursor {0:?}")]
    BadCursor(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The store URL is not one Flywheel understands.
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    /// A blocking task failed.
    #[error("store task failed: {0}")]
    Task(String),
}

impl Error {
    /// Whether the connection that raised this should be discarded.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::Connection(_) | Error::Open(_))
    }

    /// Whether this is an outage worth retrying rather than a refusal: the database could
    /// not be reached or the connection broke, the blocking task failed, or the database
    /// refused for the moment — PostgreSQL's connection, shutdown, resource, lock-timeout,
    /// cancellation and serialization errors (SQLSTATE classes 08, 40, 53, 57 and 55P03)
    /// and a broken link to the server, SQLite's busy or locked file and I/O errors. Anything else the store answered
    /// (a constraint, bad data, not found) is permanent: trying again gives the same answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Open(_) | Error::Connection(_) | Error::Task(_) => true,
            Error::Database(m) => {
                let code = m.split(':').next().unwrap_or_default();
                let sqlstate = code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric());
                if sqlstate {
                    ["08", "40", "53", "57"].iter().any(|c| code.starts_with(c)) || code == "55P03"
                } else {
                    let m = m.to_ascii_lowercase();
                    [
                        "database is locked",
                        "database is busy",
                        "table is locked",
                        "disk i/o error",
                        "connection",
                        "error communicating with the server",
                        "timed out",
                        "timeout",
                    ]
                    .iter()
                    .any(|s| m.contains(s))
                }
            }
            Error::Corrupt(_) | Error::BadCursor(_) | Error::NotFound(_) | Error::BadUrl(_) => false,
        }
    }

    /// The stable refusal code: a bad cursor and a missing thing are the client's,
    /// everything else is the store's own failure (`store_error`).
    pub fn code(&self) -> flywheel_core::ErrorCode {
        use flywheel_core::ErrorCode as C;
        match self {
            Error::BadCursor(_) => C::InvalidCursor,
            Error::NotFound(_) => C::NotFound,
            _ => C::StoreError,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An accepted event ready to store, with what it materialises.
///
/// Built with [`NewEvent::new`], which also serialises the event's stored JSON: that
/// work happens where the event is built (request threads), not on the single writer.
/// The event is read-only afterwards so the stored JSON always matches it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    event: Event,
    body: String,
    campaign: Option<analytics::touches::EventCampaign>,
    source: Option<String>,
    scope: KeyScope,
    system_write: bool,
    /// The order an `Order Completed` places.
    pub order: Option<Order>,
    /// The refund or cancellation an `Order Refunded`/`Order Cancelled` records.
    pub adjustment: Option<OrderAdjustment>,
    /// Catalogue entries the event describes.
    pub products: Vec<Product>,
}

impl NewEvent {
    /// An event to store, from the write key `source` (`None` for imports and the demo),
    /// trusted as a server key's (see [`NewEvent::with_scope`]).
    pub fn new(event: Event, source: Option<String>) -> NewEvent {
        // Serialising an `Event` cannot fail: its maps have string keys.
        let body = serde_json::to_string(&event).unwrap_or_default();
        let campaign = analytics::touches::EventCampaign::of(&event.context);
        NewEvent {
            event,
            body,
            campaign,
            source,
            scope: KeyScope::Server,
            system_write: false,
            order: None,
            adjustment: None,
            products: Vec::new(),
        }
    }

    /// From a key of `scope`: a client key's events never merge two known customers.
    pub fn with_scope(mut self, scope: KeyScope) -> NewEvent {
        self.scope = scope;
        self
    }

    /// Marks it as the system's own write (a computed or imported trait): it updates
    /// the profile but is not customer activity ([`crate::activity`]).
    pub fn system_write(mut self) -> NewEvent {
        self.system_write = true;
        self
    }

    /// Whether it is the system's own write rather than something the customer did.
    pub fn is_system_write(&self) -> bool {
        self.system_write
    }

    /// The scope of the key it came with ([`KeyScope::Server`] for imports and the system).
    pub fn scope(&self) -> KeyScope {
        self.scope
    }

    /// With the order it places.
    pub fn with_order(mut self, order: Order) -> NewEvent {
        self.order = Some(order);
        self
    }

    /// With the adjustment it records.
    pub fn with_adjustment(mut self, adjustment: OrderAdjustment) -> NewEvent {
        self.adjustment = Some(adjustment);
        self
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The write key id it came with.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The stored JSON of the event.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The campaign it carries (`context.campaign`), stored beside it for attribution.
    pub fn campaign(&self) -> Option<&analytics::touches::EventCampaign> {
        self.campaign.as_ref()
    }
}

/// What [`Store::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyOutcome {
    /// Events stored now.
    pub inserted: u64,
    /// Events skipped because their `messageId` was already stored (or repeated in the batch).
    pub duplicates: u64,
    /// Per input event, in order: whether it was stored now (false: a duplicate).
    #[serde(skip)]
    pub stored: Vec<bool>,
    /// Per input event, in order: the profile a stored event now belongs to (after the
    /// batch's merges); `None` for duplicates.
    #[serde(skip)]
    pub profiles: Vec<Option<ProfileId>>,
    /// Profiles merged by this batch, as `(loser, winner)` in the order applied.
    #[serde(skip)]
    pub merges: Vec<(ProfileId, ProfileId)>,
    /// The shared log position after this batch (its highest event `seq`), when it
    /// stored anything ([`batch_log`]).
    #[serde(skip)]
    pub last_seq: Option<i64>,
}

impl ApplyOutcome {
    /// The outcome of per-event "stored now" flags.
    pub fn from_flags(stored: Vec<bool>) -> ApplyOutcome {
        let inserted = stored.iter().filter(|s| **s).count() as u64;
        ApplyOutcome {
            inserted,
            duplicates: stored.len() as u64 - inserted,
            profiles: vec![None; stored.len()],
            stored,
            merges: Vec::new(),
            last_seq: None,
        }
    }

    /// The outcome of the events `range` of the batch.
    pub fn slice(&self, range: std::ops::Range<usize>) -> ApplyOutcome {
        let mut out = ApplyOutcome::from_flags(
            self.stored
                .get(range.clone())
                .map(<[bool]>::to_vec)
                .unwrap_or_default(),
        );
        if let Some(p) = self.profiles.get(range) {
            out.profiles = p.to_vec();
        }
        out.merges = self.merges.clone();
        out.last_seq = self.last_seq;
        out
    }
}

/// A stored event with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the event log (increasing in insertion order).
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// A page of a profile's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    /// Events, newest first.
    pub events: Vec<StoredEvent>,
    /// Pass back to continue; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of the profile list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilePage {
    /// Profiles in id order.
    pub profiles: Vec<ProfileSummary>,
    /// Pass back to continue; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A stored order with its derived refund state. Money fields are integer fen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOrder {
    /// The shop's order id.
    pub order_id: String,
    /// Buyer's user id.
    pub user_id: Option<String>,
    /// Buyer's anonymous id.
    pub anonymous_id: Option<String>,
    /// Currency.
    pub currency: String,
    /// Amount paid, fen.
    #[serde(rename = "total_fen")]
    pub total: Fen,
    /// Revenue, fen.
    #[serde(rename = "revenue_fen")]
    pub revenue: Fen,
    /// Discount, fen.
    #[serde(rename = "discount_fen")]
    pub discount: Fen,
    /// Shipping, fen.
    #[serde(rename = "shipping_fen")]
    pub shipping: Fen,
    /// Tax, fen.
    #[serde(rename = "tax_fen")]
    pub tax: Fen,
    /// Coupon code.
    pub coupon: Option<String>,
    /// When placed.
    pub placed_at: Timestamp,
    /// Refunded so far (never more than the total), fen.
    #[serde(rename = "refunded_fen")]
    pub refunded: Fen,
    /// Derived status.
    pub status: OrderStatus,
    /// Lines.
    pub lines: Vec<OrderLine>,
}

/// A write key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteKey {
    /// Stable id (`key_…`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// First characters of the secret, to recognise it.
    pub prefix: String,
    /// What its events may change.
    pub scope: KeyScope,
    /// When created.
    pub created_at: Timestamp,
    /// When revoked, if revoked.
    pub revoked_at: Option<Timestamp>,
}

/// Tables that can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The event log.
    Events,
    /// Profiles.
    Profiles,
    /// Orders.
    Orders,
    /// Products.
    Products,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Profiles => "profiles",
            Table::Orders => "orders",
            Table::Products => "products",
        }
    }
}

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// Embedded SQLite.
    Sqlite(sqlite::SqliteOptions),
    /// PostgreSQL.
    Postgres(postgres::PgOptions),
}

impl StoreConfig {
    /// Reads `--store`: `sqlite://PATH`, `postgres://…`/`postgresql://…`, or nothing for
    /// `DATA_DIR/flywheel.db`.
    pub fn from_url(url: Option<&str>, data_dir: &Path, synchronous: Synchronous) -> Result<StoreConfig> {
        match url {
            None | Some("") => Ok(StoreConfig::Sqlite(sqlite::SqliteOptions {
                path: data_dir.join("flywheel.db"),
                synchronous,
                wal_limit: WalLimit::default(),
            })),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(StoreConfig::Postgres(postgres::PgOptions::parse(u)?))
            }
            Some(u) => match u.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(StoreConfig::Sqlite(sqlite::SqliteOptions {
                    path: path.into(),
                    synchronous,
                    wal_limit: WalLimit::default(),
                })),
                _ => Err(Error::BadUrl(u.to_string())),
            },
        }
    }

    /// The same store with the SQLite WAL bounded by `limit` (PostgreSQL has no WAL file
    /// of ours to bound: the setting does not apply to it).
    pub fn with_wal_limit(mut self, limit: WalLimit) -> StoreConfig {
        if let StoreConfig::Sqlite(o) = &mut self {
            o.wal_limit = limit;
        }
        self
    }

    /// A description safe to log (no password).
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite(o) => format!("sqlite {}", o.path.display()),
            StoreConfig::Postgres(o) => {
                let host = o.url.rsplit('@').next().unwrap_or("").to_string();
                format!(
                    "postgres {host}{}",
                    o.schema
                        .as_ref()
                        .map(|s| format!(" schema {s}"))
                        .unwrap_or_default()
                )
            }
        }
    }
}

/// The store: cheap to clone, safe to share.
#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    writer: Arc<Pool>,
    readers: Arc<Pool>,
    /// SQLite's database file (the WAL is measured beside it).
    sqlite_path: Option<Arc<std::path::PathBuf>>,
    /// SQLite's background WAL checkpointer (stops at [`Store::close`] or with the last
    /// clone of the store).
    checkpointer_handle: Option<Arc<checkpoint::Checkpointer>>,
}

impl Store {
    /// Opens (creating if needed) the store and applies pending migrations.
    pub async fn open(config: StoreConfig) -> Result<Store> {
        let (dialect, writer, readers, checkpointer) = match config {
            StoreConfig::Sqlite(o) => {
                let (w, r) = (o.clone(), o.clone());
                (
                    Dialect::Sqlite,
                    Pool::new(1, move || sqlite::open(&w)),
                    Pool::new(8, move || sqlite::open(&r)),
                    Some(o),
                )
            }
            StoreConfig::Postgres(o) => {
                let r = o.clone();
                (
                    Dialect::Postgres,
                    Pool::new(2, move || postgres::open(&o)),
                    Pool::new(8, move || postgres::open(&r)),
                    None,
                )
            }
        };
        let mut store = Store {
            dialect,
            writer: Arc::new(writer),
            readers: Arc::new(readers),
            sqlite_path: checkpointer.as_ref().map(|o| Arc::new(o.path.clone())),
            checkpointer_handle: None,
        };
        store.write(|c| migrate::migrate(c).map(|_| ())).await?;
        // Checkpoint once the file exists in WAL mode and its schema is in place.
        if let Some(o) = checkpointer {
            store.truncate_left_wal(&o).await?;
            let writer = Arc::downgrade(&store.writer);
            store.checkpointer_handle = Some(Arc::new(checkpoint::Checkpointer::start(&o, writer)));
        }
        Ok(store)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.writer.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Stores a batch of events atomically: all of it, or (on error) none of it.
    pub async fn apply(&self, batch: Vec<NewEvent>) -> Result<ApplyOutcome> {
        let len = batch.len();
        self.apply_shared(Arc::new(batch), 0..len).await
    }

    /// Stores `batch[range]` atomically, without copying the events (the ingest
    /// pipeline keeps the batch to retry parts of it).
    pub async fn apply_shared(
        &self,
        batch: Arc<Vec<NewEvent>>,
        range: std::ops::Range<usize>,
    ) -> Result<ApplyOutcome> {
        self.write(move |c| {
            let part = batch
                .get(range)
                .ok_or_else(|| Error::Task("batch range out of bounds".into()))?;
            in_write_tx(c, |c| write::apply(c, part))
        })
        .await
    }

    /// The profile an identity belongs to.
    pub async fn profile_id_of(&self, identity: Identity) -> Result<Option<ProfileId>> {
        self.read(move |c| read::profile_id_of(c, &identity)).await
    }

    /// The profile named by any id a user may type: a profile id or identity key
    /// (`user:…`, `anon:…`), else a bare value tried as a `userId`, then an `anonymousId`.
    pub async fn find_profile_id(&self, id: &str) -> Result<Option<ProfileId>> {
        let candidates = match Identity::from_key(id) {
            Some(i) => vec![i],
            None => vec![
                Identity::User(id.to_string()),
                Identity::Anonymous(id.to_string()),
            ],
        };
        for c in candidates {
            if let Some(p) = self.profile_id_of(c).await? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// A profile by its id.
    pub async fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        self.read(move |c| {
            c.begin_read()?;
            let out = read::profile(c, &id);
            c.rollback();
            out
        })
        .await
    }

    /// The profile that owns `identity`.
    pub async fn profile_by_identity(&self, identity: Identity) -> Result<Option<Profile>> {
        self.read(move |c| {
            c.begin_read()?;
            let out = match read::profile_id_of(c, &identity)? {
                Some(id) => read::profile(c, &id),
                None => Ok(None),
            };
            c.rollback();
            out
        })
        .await
    }

    /// A profile's events, newest first.
    pub async fn profile_events(
        &self,
        id: ProfileId,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EventPage> {
        self.read(move |c| read::profile_events(c, &id, cursor.as_deref(), limit))
            .await
    }

    /// Profiles in id order.
    pub async fn list_profiles(&self, cursor: Option<String>, limit: usize) -> Result<ProfilePage> {
        self.read(move |c| read::list_profiles(c, cursor.as_deref(), limit))
            .await
    }

    /// A profile's orders, newest first.
    pub async fn orders_of(&self, id: ProfileId) -> Result<Vec<StoredOrder>> {
        self.read(move |c| read::orders_of(c, &id)).await
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| c.query("SELECT 1", &[]).map(|_| ())).await
    }

    /// Row count of a table.
    pub async fn count(&self, table: Table) -> Result<i64> {
        self.read(move |c| read::count(c, table)).await
    }

    /// Creates a write key of `scope`; returns it and its secret (shown once).
    pub async fn create_write_key(&self, name: String, scope: KeyScope) -> Result<(WriteKey, String)> {
        let now = chrono::Utc::now().timestamp_millis();
        self.write(move |c| in_write_tx(c, |c| keys::create(c, &name, scope, now)))
            .await
    }

    /// All write keys.
    pub async fn list_write_keys(&self) -> Result<Vec<WriteKey>> {
        self.read(keys::list).await
    }

    /// Revokes a write key by id.
    pub async fn revoke_write_key(&self, id: String) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis();
        self.write(move |c| in_write_tx(c, |c| keys::revoke(c, &id, now)))
            .await
    }

    /// The id and scope of the active write key with this secret.
    pub async fn authenticate_write_key(&self, secret: String) -> Result<Option<(String, KeyScope)>> {
        self.read(move |c| keys::authenticate(c, &secret)).await
    }

    /// A stored setting.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>> {
        self.read(move |c| keys::setting(c, key)).await
    }

    /// Stores a setting unless already set; returns whether it was stored.
    pub async fn set_setting_once(&self, key: &'static str, value: String) -> Result<bool> {
        self.write(move |c| in_write_tx(c, |c| keys::set_setting_once(c, key, &value)))
            .await
    }

    /// Runs a read-only closure on a reader connection (the audience engine's snapshot
    /// and backfill queries, [`audience`]).
    pub async fn read_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read(f).await
    }

    /// Runs a closure with its own error type inside a write transaction: any error of the
    /// closure rolls the whole transaction back and comes out as it was; a store failure
    /// comes out through `E: From<Error>` (the coupon and loyalty services).
    pub async fn write_tx<T: Send + 'static, E: From<Error> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E> {
        let refused: Arc<std::sync::Mutex<Option<E>>> = Arc::default();
        let slot = refused.clone();
        let out = self
            .write(move |c| {
                in_write_tx(c, |c| {
                    f(c).map_err(|e| {
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(e);
                        }
                        Error::Task("the change was refused; rolled back".into())
                    })
                })
            })
            .await;
        match out {
            Ok(v) => Ok(v),
            Err(e) => Err(refused
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .unwrap_or_else(|| E::from(e))),
        }
    }

    /// Runs a closure inside a write transaction (audience definitions and manual tags).
    pub async fn write_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write(move |c| in_write_tx(c, f)).await
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn outages_are_transient_and_refusals_are_not() {
        for e in [
            Error::Connection("closed".into()),
            Error::Open("refused".into()),
            Error::Database("57P01: terminating connection due to administrator command".into()),
            Error::Database("08006: connection failure".into()),
            Error::Database("40001: could not serialize access".into()),
            Error::Database("55P03: lock not available".into()),
            Error::Database("database is locked".into()),
            Error::Database("error communicating with the server: broken pipe".into()),
        ] {
            assert!(e.is_transient(), "{e}");
        }
        for e in [
            Error::Database("23505: duplicate key value violates unique constraint".into()),
            Error::Database("UNIQUE constraint failed: coupons.code".into()),
            Error::Database("55000: object not in prerequisite state".into()),
            Error::Corrupt("bad".into()),
            Error::NotFound("x".into()),
        ] {
            assert!(!e.is_transient(), "{e}");
        }
    }
}
