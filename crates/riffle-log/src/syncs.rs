//! The writer's sync helpers: long-lived threads that run the `fdatasync`s
//! of one group-commit round concurrently, so a round touching several logs
//! (a PutRecords spread over shards) waits for about one sync instead of one
//! per file, without starting threads in every round.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

/// The most `fdatasync`s one round runs at once (the writer's own plus its
/// helpers'): enough for a PutRecords over many shards, few enough that a
/// round over thousands of logs does not run thousands of syncs at once.
pub(crate) const SYNC_THREADS_MAX: usize = 16;

/// A helper only calls `fdatasync` and sends its result.
const HELPER_STACK_BYTES: usize = 64 * 1024;

/// A share of one round's files for one helper; their results go back with
/// the position of the first in the round.
struct Job {
    first: usize,
    files: Vec<Arc<File>>,
    done: Sender<(usize, Vec<io::Result<()>>)>,
}

/// `SYNC_THREADS_MAX - 1` helper threads, started with the store and joined
/// when the writer (which owns this) stops. Each has its own queue, so a
/// job wakes exactly the thread that runs it.
pub(crate) struct SyncPool {
    helpers: Vec<(Sender<Job>, JoinHandle<()>)>,
}

impl SyncPool {
    pub fn start() -> io::Result<SyncPool> {
        let mut pool = SyncPool {
            helpers: Vec::with_capacity(SYNC_THREADS_MAX - 1),
        };
        for _ in 1..SYNC_THREADS_MAX {
            let (tx, rx) = mpsc::channel::<Job>();
            let helper = std::thread::Builder::new()
                .name("riffle-log-sync".into())
                .stack_size(HELPER_STACK_BYTES)
                .spawn(move || help(&rx))?;
            // On an early return, dropping `pool` joins those started so far.
            pool.helpers.push((tx, helper));
        }
        Ok(pool)
    }

    /// `fdatasync`s `files` concurrently and returns each one's result, in
    /// order, once all of them are done. The files are split into up to
    /// [`SYNC_THREADS_MAX`] equal shares; the calling thread syncs the first
    /// itself (so one file costs no hand-off), a helper each other one.
    pub fn sync_data_each(
        &self,
        files: impl IntoIterator<Item = Arc<File>>,
    ) -> Vec<io::Result<()>> {
        let files: Vec<Arc<File>> = files.into_iter().collect();
        let mut results: Vec<Option<io::Result<()>>> = files.iter().map(|_| None).collect();
        let per_share = files.len().div_ceil(SYNC_THREADS_MAX).max(1);
        let (done_tx, done_rx) = mpsc::channel();
        let mut shares = files.chunks(per_share);
        let own = shares.next().unwrap_or_default();
        for ((first, share), (helper, _)) in (per_share..)
            .step_by(per_share)
            .zip(shares)
            .zip(&self.helpers)
        {
            let job = Job {
                first,
                files: share.to_vec(),
                done: done_tx.clone(),
            };
            if let Err(mpsc::SendError(job)) = helper.send(job) {
                // The helper is gone (it cannot panic): sync its share here
                // rather than not at all.
                results[first..first + share.len()]
                    .iter_mut()
                    .zip(sync_share(&job.files))
                    .for_each(|(slot, r)| *slot = Some(r));
            }
        }
        drop(done_tx);
        for (slot, r) in results.iter_mut().zip(sync_share(own)) {
            *slot = Some(r);
        }
        // Ends once every job has answered or been dropped unanswered.
        for (first, rs) in done_rx {
            for (slot, r) in results[first..].iter_mut().zip(rs) {
                *slot = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| {
                // A helper cannot panic (sync_data returns errors); if one
                // somehow did, its files count as failed, never as synced.
                r.unwrap_or_else(|| Err(io::Error::other("sync helper thread panicked")))
            })
            .collect()
    }
}

fn sync_share(files: &[Arc<File>]) -> Vec<io::Result<()>> {
    files.iter().map(|f| f.sync_data()).collect()
}

/// A helper's loop: sync each share handed over until the pool is dropped.
fn help(jobs: &Receiver<Job>) {
    for job in jobs {
        let results = sync_share(&job.files);
        // Its descriptors close with the writer's, not after it moved on.
        drop(job.files);
        let _ = job.done.send((job.first, results));
    }
}

impl Drop for SyncPool {
    fn drop(&mut self) {
        for (jobs, helper) in self.helpers.drain(..) {
            // Its queue closes first, which ends the helper's loop.
            drop(jobs);
            let _ = helper.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_data_each_answers_every_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::start().unwrap();
        for n in [0, 1, 2, 16, 17, 40] {
            let files: Vec<Arc<File>> = (0..n)
                .map(|i| Arc::new(File::create(dir.path().join(format!("{n}-{i}"))).unwrap()))
                .collect();
            let results = pool.sync_data_each(files);
            assert_eq!(results.len(), n);
            assert!(results.iter().all(Result::is_ok));
        }
    }

    #[test]
    fn sync_data_each_reports_each_files_own_failure() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::start().unwrap();
        // fdatasync of a pipe fails with EINVAL; of a regular file it works.
        let (r, _w) = pipe();
        let good = Arc::new(File::create(dir.path().join("good")).unwrap());
        let bad = Arc::new(r);
        let files = vec![good.clone(), bad.clone(), good, bad];
        let results = pool.sync_data_each(files);
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true, false]);
        let code = results[1].as_ref().unwrap_err().raw_os_error();
        assert_eq!(code, Some(libc::EINVAL));
    }

    fn pipe() -> (File, File) {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe succeeded, so both are fresh descriptors owned by nobody else.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }
}
