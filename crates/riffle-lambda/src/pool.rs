//! The instances of one command function: started on first use, kept warm,
//! at most `max_instances` at once (more concurrent invokes queue for a
//! permit), one invocation per instance at a time; an instance that timed
//! out, crashed or failed to initialise is killed and replaced on next use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot};

use crate::config::CommandSpec;
use crate::errors::LambdaError;
use crate::instance::{Context, Groups, Instance, SpawnError};
use crate::shapes;
use crate::slot::{Job, Reply};
use crate::{Invocation, InvokeMeta, LATEST};

/// Lambda's limit on a function's initialisation ("The Init phase is
/// limited to 10 seconds"): a cold start that takes longer fails the
/// invocation as a timeout.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Pool {
    spec: CommandSpec,
    ctx: Context,
    groups: Arc<Groups>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Instance>>,
}

/// How an invocation ended, before it is worded for the caller.
enum End {
    Reply(Reply),
    TimedOut(Duration),
}

impl Pool {
    pub fn new(spec: CommandSpec, ctx: Context, groups: Arc<Groups>) -> Pool {
        let permits = Arc::new(Semaphore::new(spec.max_instances as usize));
        Pool {
            spec,
            ctx,
            groups,
            permits,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs one invocation on an instance of its own.
    pub async fn invoke(
        &self,
        payload: Bytes,
        meta: Arc<InvokeMeta>,
    ) -> Result<Invocation, LambdaError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| LambdaError::ShutDown)?;
        let id = uuid::Uuid::new_v4().to_string();
        let (instance, end) = match self.run(&id, payload, meta).await? {
            Ok(ran) => ran,
            Err(reason) => return Ok(failed(shapes::invalid_entrypoint(&id, &reason))),
        };
        let invocation = match end {
            End::Reply(Reply::Response(payload)) => Invocation::ok(payload),
            End::Reply(Reply::Error(payload)) => failed(payload),
            // Runtime clients exit on the 413 (awslambdaric does): the
            // instance is not reused, so the next event finds a live one.
            End::Reply(Reply::TooLarge) => return Ok(failed(shapes::response_too_large())),
            End::Reply(Reply::InitError(payload)) => return Ok(failed(payload)),
            End::Reply(Reply::Exited(status)) => {
                return Ok(failed(shapes::runtime_exit(&id, &status)));
            }
            End::TimedOut(after) => {
                // Lambda does not reuse an instance whose invocation timed
                // out: dropping it kills its process group.
                drop(instance);
                return Ok(failed(shapes::timed_out(&id, after.as_secs_f64())));
            }
        };
        if instance.slot.is_alive() && !self.groups.is_shut() {
            self.idle.lock().push(instance);
        }
        Ok(invocation)
    }

    /// Hands the job to a warm instance or a new one and waits for its end.
    /// The inner `Err` is a program that could not be started.
    ///
    /// A warm instance can die while parked, or after the job was queued
    /// but before its runtime took it: the event never reached the
    /// function, so it is handed once more, to a new instance.
    async fn run(
        &self,
        id: &str,
        payload: Bytes,
        meta: Arc<InvokeMeta>,
    ) -> Result<Result<(Instance, End), String>, LambdaError> {
        let mut warm = self.take_idle();
        let mut fresh_tries = 0;
        loop {
            let instance = match warm.take() {
                Some(instance) => instance,
                None => {
                    fresh_tries += 1;
                    match Instance::start(&self.spec, &self.ctx, &self.groups).await {
                        Ok(instance) => instance,
                        Err(SpawnError::Program(reason)) => return Ok(Err(reason)),
                        Err(SpawnError::Registry(e)) => return Err(e),
                    }
                }
            };
            let (started_tx, started) = oneshot::channel();
            let (reply_tx, reply) = oneshot::channel();
            let job = Job {
                id: id.to_owned(),
                payload: payload.clone(),
                meta: meta.clone(),
                timeout: self.spec.timeout,
                started: started_tx,
                reply: reply_tx,
            };
            if instance.slot.submit(job).is_err() {
                continue; // died while parked
            }
            let (end, was_started) = self.wait(started, reply).await;
            let unseen = !was_started && matches!(end, End::Reply(Reply::Exited(_)));
            if unseen && fresh_tries < 2 {
                continue;
            }
            return Ok(Ok((instance, end)));
        }
    }

    /// The end of the job, and whether its runtime had taken it.
    async fn wait(
        &self,
        started: oneshot::Receiver<()>,
        mut reply: oneshot::Receiver<Reply>,
    ) -> (End, bool) {
        let cold = Instant::now();
        // An Err here means the job ended before it started (the process
        // exited, or failed to initialise): the reply says how.
        let was_started = match tokio::time::timeout(INIT_TIMEOUT, started).await {
            Err(_) => return (End::TimedOut(cold.elapsed()), false),
            Ok(started) => started.is_ok(),
        };
        let end = match tokio::time::timeout(self.spec.timeout, &mut reply).await {
            Ok(Ok(reply)) => End::Reply(reply),
            // Every path that drops a job's reply sender answers first
            // (`Slot::fail`, `complete`); a runtime that asked for the next
            // job without answering this one has lost it: it failed.
            Ok(Err(_)) => End::Reply(Reply::Error(shapes::runtime_lost())),
            Err(_) => End::TimedOut(self.spec.timeout),
        };
        (end, was_started)
    }

    /// A parked instance still alive, if any.
    fn take_idle(&self) -> Option<Instance> {
        let mut dead = Vec::new();
        let mut idle = self.idle.lock();
        let found = loop {
            match idle.pop() {
                Some(instance) if instance.slot.is_alive() => break Some(instance),
                Some(instance) => dead.push(instance),
                None => break None,
            }
        };
        drop(idle);
        drop(dead); // killed outside the lock
        found
    }

    /// Kills the parked instances and refuses further invocations.
    pub fn close(&self) {
        self.permits.close();
        let parked: Vec<Instance> = self.idle.lock().drain(..).collect();
        drop(parked);
    }

    /// The process ids of the parked instances (for tests and metrics).
    pub fn idle_pids(&self) -> Vec<u32> {
        self.idle.lock().iter().map(|i| i.pid).collect()
    }

    /// The instances running now: those parked warm and alive, and one per
    /// invocation in flight (each holds a permit while its instance runs).
    pub fn running(&self) -> usize {
        let busy =
            (self.spec.max_instances as usize).saturating_sub(self.permits.available_permits());
        let warm = self
            .idle
            .lock()
            .iter()
            .filter(|i| i.slot.is_alive())
            .count();
        // A closed pool hands out no permits and parks nothing.
        if self.permits.is_closed() {
            0
        } else {
            busy + warm
        }
    }

    /// The most instances the function runs at once (`max_instances`).
    pub fn max_instances(&self) -> u32 {
        self.spec.max_instances
    }

    /// The program the function's instances run.
    pub fn program(&self) -> &str {
        &self.spec.program
    }
}

fn failed(payload: Bytes) -> Invocation {
    Invocation {
        payload,
        function_error: Some(shapes::UNHANDLED.to_owned()),
        executed_version: LATEST.to_owned(),
    }
}
