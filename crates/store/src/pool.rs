//! A small blocking connection pool shared by both backends.
//!
//! At most `max_open` connections exist at once: a caller finding none idle and the
//! limit reached waits for one to come back (so a burst of concurrent requests queues
//! instead of exhausting the database's connection slots). Connections are made on
//! demand and kept for reuse; a connection whose last use failed is dropped instead of
//! returned. A closure must not take a second connection from the same pool.

use std::sync::{Arc, Condvar, Mutex};

use crate::conn::Conn;
use crate::Result;

type Connect = dyn Fn() -> Result<Box<dyn Conn>> + Send + Sync;

#[derive(Default)]
struct Slots {
    idle: Vec<Box<dyn Conn>>,
    open: usize,
}

pub struct Pool {
    slots: Mutex<Slots>,
    returned: Condvar,
    connect: Box<Connect>,
    max_open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("max_open", &self.max_open).finish()
    }
}

impl Pool {
    /// A pool of at most `max_open` connections made by `connect`.
    pub fn new(max_open: usize, connect: impl Fn() -> Result<Box<dyn Conn>> + Send + Sync + 'static) -> Self {
        Pool {
            slots: Mutex::new(Slots::default()),
            returned: Condvar::new(),
            connect: Box::new(connect),
            max_open: max_open.max(1),
        }
    }

    /// Runs `f` on a connection of the pool, waiting for one when all are in use.
    pub fn with<T>(self: &Arc<Self>, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.take()?;
        let out = f(conn.as_mut());
        let healthy = !matches!(&out, Err(e) if e.is_connection_error());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if healthy {
            slots.idle.push(conn);
        } else {
            slots.open -= 1;
        }
        drop(slots);
        self.returned.notify_one();
        out
    }

    fn take(&self) -> Result<Box<dyn Conn>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = slots.idle.pop() {
                return Ok(c);
            }
            if slots.open < self.max_open {
                slots.open += 1;
                drop(slots);
                return (self.connect)().inspect_err(|_| {
                    self.slots.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                    self.returned.notify_one();
                });
            }
            slots = self.returned.wait(slots).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = self
            .slots
            .get_mut()
            .map(|s| std::mem::take(&mut s.idle))
            .unwrap_or_default();
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("flywheel-pool-close".into())
                .spawn(move || drop(idle));
        }
    }
}
