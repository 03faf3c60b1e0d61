//! The hand-over between an invoke and the runtime process of one instance:
//! at most one invocation queued or running at a time (Lambda's model), and
//! the end of it, whichever side ends it first (a response, an error, an
//! init error, the process's exit, or the invoker's timeout).
//!
//! The lock is held only to move a job between fields; no I/O under it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use crate::InvokeMeta;

/// One invocation, as handed to an instance.
pub(crate) struct Job {
    pub id: String,
    pub payload: Bytes,
    pub meta: Arc<InvokeMeta>,
    pub timeout: Duration,
    /// Fired when the runtime picks the job up (`/next`): the function's
    /// timeout runs from then; cold start has its own limit.
    pub started: oneshot::Sender<()>,
    pub reply: oneshot::Sender<Reply>,
}

/// How an invocation ended, as the instance saw it.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `/response`: the function's result.
    Response(Bytes),
    /// `/error`: the runtime's error document.
    Error(Bytes),
    /// `/init/error`: the runtime failed before it could take the job.
    InitError(Bytes),
    /// The response was past the payload limit.
    TooLarge,
    /// The process ended: its status as Lambda words it.
    Exited(String),
}

/// What `/next` hands the runtime.
pub(crate) struct Next {
    pub id: String,
    pub payload: Bytes,
    pub meta: Arc<InvokeMeta>,
    pub timeout: Duration,
}

struct Active {
    id: String,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct State {
    queued: Option<Job>,
    active: Option<Active>,
    /// Set once the instance can take no more work (exit, init error).
    dead: Option<String>,
}

/// The shared state of one instance.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<State>,
    wake: Notify,
}

impl Slot {
    /// Queues `job`; gives it back if the instance is already dead.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let mut state = self.state.lock();
        if state.dead.is_some() {
            return Err(job);
        }
        state.queued = Some(job);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Whether the instance can still take work.
    pub fn is_alive(&self) -> bool {
        self.state.lock().dead.is_none()
    }

    /// Waits for the next job (the long poll of `/next`) and makes it the
    /// active one.
    pub async fn next(&self) -> Next {
        loop {
            let woken = self.wake.notified();
            if let Some(next) = self.take_queued() {
                return next;
            }
            woken.await;
        }
    }

    fn take_queued(&self) -> Option<Next> {
        let mut state = self.state.lock();
        let job = state.queued.take()?;
        // A runtime asking for more has finished whatever it had: an active
        // job left unanswered is dropped, and its invoker told so.
        state.active = Some(Active {
            id: job.id.clone(),
            reply: job.reply,
        });
        drop(state);
        // The invoker may have given up already; nothing to tell then.
        let _ = job.started.send(());
        Some(Next {
            id: job.id,
            payload: job.payload,
            meta: job.meta,
            timeout: job.timeout,
        })
    }

    /// Whether `id` is the invocation the runtime is working on.
    pub fn is_active(&self, id: &str) -> bool {
        self.state
            .lock()
            .active
            .as_ref()
            .is_some_and(|a| a.id == id)
    }

    /// Ends the active invocation `id` with `reply`; false if `id` is not
    /// the active one (already answered, timed out, or never handed out).
    pub fn complete(&self, id: &str, reply: Reply) -> bool {
        let mut state = self.state.lock();
        match state.active.take_if(|a| a.id == id) {
            Some(active) => {
                drop(state);
                // The invoker may have timed out meanwhile.
                let _ = active.reply.send(reply);
                true
            }
            None => false,
        }
    }

    /// The instance can take no more work: ends what it had with `reply`.
    pub fn fail(&self, why: &str, reply: impl Fn() -> Reply) {
        let mut state = self.state.lock();
        state.dead.get_or_insert_with(|| why.to_owned());
        let queued = state.queued.take();
        let active = state.active.take();
        drop(state);
        if let Some(job) = queued {
            let _ = job.reply.send(reply());
        }
        if let Some(active) = active {
            let _ = active.reply.send(reply());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> (Job, oneshot::Receiver<()>, oneshot::Receiver<Reply>) {
        let (started, started_rx) = oneshot::channel();
        let (reply, reply_rx) = oneshot::channel();
        let meta = Arc::new(InvokeMeta {
            invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".to_owned(),
            options: crate::InvokeOptions::default(),
        });
        let job = Job {
            id: id.to_owned(),
            payload: Bytes::from_static(b"{}"),
            meta,
            timeout: Duration::from_secs(3),
            started,
            reply,
        };
        (job, started_rx, reply_rx)
    }

    #[tokio::test]
    async fn a_job_goes_to_the_runtime_and_its_answer_back_to_the_invoker() {
        let slot = Slot::default();
        let (job, mut started, reply) = job("r1");
        assert!(slot.submit(job).is_ok());
        assert!(started.try_recv().is_err(), "not started before /next");
        let next = slot.next().await;
        assert_eq!(next.id, "r1");
        assert!(started.try_recv().is_ok());
        assert!(
            !slot.complete("r2", Reply::Response(Bytes::new())),
            "another id"
        );
        assert!(slot.complete("r1", Reply::Response(Bytes::from_static(b"42"))));
        assert!(matches!(reply.await, Ok(Reply::Response(b)) if b == "42"));
        assert!(
            !slot.complete("r1", Reply::Response(Bytes::new())),
            "answered once"
        );
    }

    #[tokio::test]
    async fn a_dead_instance_fails_its_job_and_takes_no_more() {
        let slot = Slot::default();
        let (job1, _started, reply) = job("r1");
        assert!(slot.submit(job1).is_ok());
        slot.fail("exit status 1", || {
            Reply::Exited("exit status 1".to_owned())
        });
        assert!(matches!(reply.await, Ok(Reply::Exited(s)) if s == "exit status 1"));
        assert!(!slot.is_alive());
        let (job2, _, _) = job("r2");
        assert!(slot.submit(job2).is_err());
    }
}
