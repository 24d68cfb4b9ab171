//! A small blocking connection pool shared by both backends.
//!
//! Connections are made on demand and kept for reuse up to `max_idle`; a connection
//! whose last use failed is dropped instead of returned.

use std::sync::{Arc, Mutex};

use crate::conn::Conn;
use crate::Result;

type Connect = dyn Fn() -> Result<Box<dyn Conn>> + Send + Sync;

/// A pool of boxed connections.
pub struct Pool {
    idle: Mutex<Vec<Box<dyn Conn>>>,
    connect: Box<Connect>,
    max_idle: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("max_idle", &self.max_idle).finish()
    }
}

impl Pool {
    /// A pool that opens connections with `connect`.
    pub fn new(max_idle: usize, connect: impl Fn() -> Result<Box<dyn Conn>> + Send + Sync + 'static) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            connect: Box::new(connect),
            max_idle,
        }
    }

    /// Runs `f` on a pooled connection.
    pub fn with<T>(self: &Arc<Self>, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut conn = match taken {
            Some(c) => c,
            None => (self.connect)()?,
        };
        let out = f(conn.as_mut());
        let healthy = !matches!(&out, Err(e) if e.is_connection_error());
        if healthy {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
            }
        }
        out
    }
}

impl Drop for Pool {
    /// Closes idle connections off the async runtime: the PostgreSQL client blocks on
    /// close, which a runtime worker thread must not do.
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("flywheel-pool-close".into())
                .spawn(move || drop(idle));
        }
    }
}
