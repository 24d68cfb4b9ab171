//! Where templates render (issue 14 §1): in a sandbox process that bounds time and memory.
//!
//! Steps and output are bounded inside minijinja ([`RenderLimits`]), but one template
//! operation can allocate hundreds of megabytes (`{{ "x" * 99999999 }}`,
//! `(range(100000)|list) * 1000`) or run long inside a single built-in, and a thread
//! cannot be stopped from outside. So the server renders in child processes of its own
//! binary ([`RenderSandbox`]): each holds at most
//! [`RenderLimits::max_memory_bytes`] of heap (`RLIMIT_DATA`; an allocation beyond it
//! ends the child), and a render that takes longer than [`RenderLimits::timeout_ms`] has
//! its child killed. Either way the message fails with [`TemplateError::Limit`] and a new
//! child is started for the next one; the server itself never blocks or grows.
//!
//! Threading: [`Renderer::render`] blocks; async callers run it on a blocking thread.
//! Children talk JSON lines over their standard input and output, one request at a
//! time; a pool keeps up to `workers` of them alive between renders. A child whose
//! parent has gone sees its standard input close and exits.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::{Limit, RenderLimits};
use crate::template::{MessageTemplate, RenderedMessage, TemplateError, TemplateSource, VariableCatalog};

/// The first argument that makes the `flywheel` binary a render worker ([`run_worker`]).
pub const WORKER_ARG: &str = "__render-worker";

/// The environment variable a worker reads its [`RenderLimits`] from (JSON).
const LIMITS_ENV: &str = "FLYWHEEL_RENDER_LIMITS";

/// How messages are rendered: in this thread (library use and tests: steps and output
/// bounded) or in the sandbox (the server: time and memory bounded too, and templates
/// compiled there as well, since compiling folds constants such as `"x" * 99999999`).
#[derive(Debug, Clone)]
pub enum Renderer {
    /// In the calling thread, compiled templates cached.
    InProcess(Arc<InProcessRenderer>),
    /// In sandbox child processes.
    Sandboxed(Arc<RenderSandbox>),
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::in_process(RenderLimits::default())
    }
}

impl Renderer {
    /// Renders in the calling thread within `limits` (steps and output).
    pub fn in_process(limits: RenderLimits) -> Self {
        Renderer::InProcess(Arc::new(InProcessRenderer {
            limits,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// The bounds renders are held to.
    pub fn limits(&self) -> RenderLimits {
        match self {
            Renderer::InProcess(r) => r.limits,
            Renderer::Sandboxed(s) => s.limits,
        }
    }

    /// Checks a template before it is saved: it compiles, uses only `catalog`'s
    /// variables, and passes [`MessageTemplate::trial`] on `sample`.
    pub fn check(
        &self,
        source: &TemplateSource,
        catalog: &VariableCatalog,
        sample: &Value,
    ) -> Result<(), TemplateError> {
        match self {
            Renderer::InProcess(r) => {
                MessageTemplate::build(source.clone(), Some(catalog), r.limits)?.trial(sample, catalog)
            }
            Renderer::Sandboxed(s) => s
                .ask(Request::Check {
                    template: source.clone(),
                    catalog: catalog.paths().map(String::from).collect(),
                    sample: sample.clone(),
                })
                .map(|_| ()),
        }
    }

    /// Renders `source` for `vars`, blocking until done or a limit is hit.
    pub fn render(&self, source: &TemplateSource, vars: &Value) -> Result<RenderedMessage, TemplateError> {
        match self {
            Renderer::InProcess(r) => r.compiled(source)?.render(vars),
            Renderer::Sandboxed(s) => s
                .ask(Request::Render {
                    template: source.clone(),
                    vars: vars.clone(),
                })?
                .ok_or_else(|| sandbox_failed("the render sandbox answered a render with a check")),
        }
    }
}

/// Rendering in the calling thread, with compiled templates cached by source.
#[derive(Debug)]
pub struct InProcessRenderer {
    limits: RenderLimits,
    cache: Mutex<HashMap<TemplateSource, Arc<MessageTemplate>>>,
}

impl InProcessRenderer {
    fn compiled(&self, source: &TemplateSource) -> Result<Arc<MessageTemplate>, TemplateError> {
        if let Some(t) = self.cache.lock().ok().and_then(|c| c.get(source).cloned()) {
            return Ok(t);
        }
        let t = Arc::new(MessageTemplate::build(source.clone(), None, self.limits)?);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHED_TEMPLATES {
                c.clear();
            }
            c.insert(source.clone(), t.clone());
        }
        Ok(t)
    }
}

/// Compiled templates kept by a renderer or a worker (cleared when full).
const CACHED_TEMPLATES: usize = 256;

/// A pool of render worker processes.
#[derive(Debug)]
pub struct RenderSandbox {
    program: PathBuf,
    args: Vec<String>,
    limits: RenderLimits,
    workers: usize,
    pool: Mutex<Pool>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<Worker>,
    alive: usize,
}

#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
}

/// What a worker is asked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    /// Compile against the catalog paths and try on the sample ([`Renderer::check`]).
    Check {
        template: TemplateSource,
        catalog: Vec<String>,
        sample: Value,
    },
    /// Render for one user.
    Render { template: TemplateSource, vars: Value },
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Checked,
    Rendered(RenderedMessage),
    Failed(WireError),
}

/// A [`TemplateError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireError {
    Syntax {
        part: String,
        detail: String,
    },
    UnknownVariables {
        part: String,
        names: Vec<String>,
        known: String,
    },
    Missing {
        part: String,
        detail: String,
    },
    Render {
        part: String,
        detail: String,
    },
    Limit {
        part: String,
        limit: Limit,
    },
}

impl From<TemplateError> for WireError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::Syntax { part, detail } => WireError::Syntax {
                part: part.into(),
                detail,
            },
            TemplateError::UnknownVariables { part, names, known } => WireError::UnknownVariables {
                part: part.into(),
                names,
                known,
            },
            TemplateError::Missing { part, detail } => WireError::Missing {
                part: part.into(),
                detail,
            },
            TemplateError::Render { part, detail } => WireError::Render {
                part: part.into(),
                detail,
            },
            TemplateError::Limit { part, limit } => WireError::Limit {
                part: part.into(),
                limit,
            },
        }
    }
}

impl From<WireError> for TemplateError {
    fn from(e: WireError) -> Self {
        let part = |p: &str| match p {
            "subject" => "subject",
            "html" => "html",
            "text" => "text",
            _ => "message",
        };
        match e {
            WireError::Syntax { part: p, detail } => TemplateError::Syntax {
                part: part(&p),
                detail,
            },
            WireError::UnknownVariables {
                part: p,
                names,
                known,
            } => TemplateError::UnknownVariables {
                part: part(&p),
                names,
                known,
            },
            WireError::Missing { part: p, detail } => TemplateError::Missing {
                part: part(&p),
                detail,
            },
            WireError::Render { part: p, detail } => TemplateError::Render {
                part: part(&p),
                detail,
            },
            WireError::Limit { part: p, limit } => TemplateError::Limit {
                part: part(&p),
                limit,
            },
        }
    }
}

fn sandbox_failed(detail: impl Into<String>) -> TemplateError {
    TemplateError::Render {
        part: "message",
        detail: detail.into(),
    }
}

impl RenderSandbox {
    /// A pool of at most `workers` children started as `program args…` (the server passes
    /// its own executable and [`WORKER_ARG`]). Children start on first use.
    pub fn new(program: PathBuf, args: Vec<String>, limits: RenderLimits, workers: usize) -> Self {
        RenderSandbox {
            program,
            args,
            limits,
            workers: workers.max(1),
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        }
    }

    /// Asks a worker; a worker that overruns the time limit is killed, one that dies
    /// (out of memory) is replaced. `Ok(None)`: checked.
    fn ask(&self, request: Request) -> Result<Option<RenderedMessage>, TemplateError> {
        let mut worker = self.checkout()?;
        let sent = serde_json::to_vec(&request)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                worker.stdin.write_all(&line)?;
                worker.stdin.flush()
            });
        if let Err(e) = sent {
            let status = self.discard(worker);
            return Err(sandbox_failed(format!(
                "the render sandbox stopped ({e}; {})",
                describe(&status)
            )));
        }
        match worker.replies.recv_timeout(self.limits.timeout()) {
            Ok(line) => {
                self.checkin(worker);
                match serde_json::from_str::<Reply>(&line) {
                    Ok(Reply::Rendered(m)) => Ok(Some(m)),
                    Ok(Reply::Checked) => Ok(None),
                    Ok(Reply::Failed(e)) => Err(e.into()),
                    Err(e) => Err(sandbox_failed(format!(
                        "the render sandbox answered nonsense: {e}"
                    ))),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.discard(worker);
                Err(TemplateError::Limit {
                    part: "message",
                    limit: Limit::Time(self.limits.timeout_ms),
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.discard(worker);
                // An allocation past RLIMIT_DATA aborts the child (SIGABRT).
                if status.as_ref().is_ok_and(died_of_abort) {
                    Err(TemplateError::Limit {
                        part: "message",
                        limit: Limit::Memory(self.limits.max_memory_bytes),
                    })
                } else {
                    Err(sandbox_failed(format!(
                        "the render sandbox stopped ({})",
                        describe(&status)
                    )))
                }
            }
        }
    }

    fn checkout(&self) -> Result<Worker, TemplateError> {
        let mut pool = self
            .pool
            .lock()
            .map_err(|_| sandbox_failed("render pool poisoned"))?;
        loop {
            if let Some(mut w) = pool.idle.pop() {
                if matches!(w.child.try_wait(), Ok(None)) {
                    return Ok(w);
                }
                pool.alive -= 1;
                continue;
            }
            if pool.alive < self.workers {
                pool.alive += 1;
                drop(pool);
                return self.spawn().map_err(|e| {
                    self.forget_one();
                    sandbox_failed(format!(
                        "cannot start the render sandbox {}: {e}",
                        self.program.display()
                    ))
                });
            }
            pool = self
                .freed
                .wait(pool)
                .map_err(|_| sandbox_failed("render pool poisoned"))?;
        }
    }

    fn checkin(&self, worker: Worker) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(worker);
        }
        self.freed.notify_one();
    }

    /// Kills and reaps a worker; returns how it ended.
    fn discard(&self, mut worker: Worker) -> io::Result<ExitStatus> {
        let _ = worker.child.kill();
        let status = worker.child.wait();
        self.forget_one();
        status
    }

    fn forget_one(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.alive = pool.alive.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn spawn(&self) -> io::Result<Worker> {
        let limits = serde_json::to_string(&self.limits).map_err(io::Error::other)?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env(LIMITS_ENV, limits)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("no pipes to the render worker"));
        };
        let (tx, replies) = mpsc::channel();
        std::thread::Builder::new()
            .name("render-sandbox-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            child,
            stdin,
            replies,
        })
    }
}

impl Drop for RenderSandbox {
    fn drop(&mut self) {
        if let Ok(pool) = self.pool.get_mut() {
            for w in &mut pool.idle {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

fn describe(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

#[cfg(unix)]
fn died_of_abort(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGABRT)
}

#[cfg(not(unix))]
fn died_of_abort(_status: &ExitStatus) -> bool {
    false
}

/// The worker side: reads requests from standard input until it closes, renders each
/// within the limits given by the parent, answers on standard output. Heap is capped
/// with `RLIMIT_DATA` first, so an allocation past the limit ends this process, not
/// the server.
pub fn run_worker() -> io::Result<()> {
    let limits: RenderLimits = std::env::var(LIMITS_ENV)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    cap_heap(limits.max_memory_bytes)?;
    let mut cache: HashMap<TemplateSource, MessageTemplate> = HashMap::new();
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => render_request(&mut cache, req, limits),
            Err(e) => Reply::Failed(WireError::Render {
                part: "message".into(),
                detail: format!("bad request to the render worker: {e}"),
            }),
        };
        let mut out = serde_json::to_vec(&reply).map_err(io::Error::other)?;
        out.push(b'\n');
        stdout.write_all(&out)?;
        stdout.flush()?;
    }
    Ok(())
}

fn render_request(
    cache: &mut HashMap<TemplateSource, MessageTemplate>,
    req: Request,
    limits: RenderLimits,
) -> Reply {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match req {
        Request::Check {
            template,
            catalog,
            sample,
        } => {
            let catalog = VariableCatalog::new(catalog);
            MessageTemplate::build(template, Some(&catalog), limits)?.trial(&sample, &catalog)?;
            Ok(Reply::Checked)
        }
        Request::Render { template, vars } => {
            if cache.len() >= CACHED_TEMPLATES {
                cache.clear();
            }
            let t = match cache.entry(template) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let t = MessageTemplate::build(e.key().clone(), None, limits)?;
                    e.insert(t)
                }
            };
            t.render(&vars).map(Reply::Rendered)
        }
    }));
    match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => Reply::Failed(e.into()),
        Err(_) => Reply::Failed(WireError::Render {
            part: "message".into(),
            detail: "the template engine failed on this message".into(),
        }),
    }
}

#[cfg(unix)]
fn cap_heap(bytes: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn cap_heap(_bytes: u64) -> io::Result<()> {
    Ok(())
}
