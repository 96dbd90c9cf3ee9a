//! Writes that arrive together, committed together.
//!
//! The relay stores each webhook delivery and records each delivered copy as it happens, many
//! at once; each on its own would be a transaction of three or four statements, and each
//! statement a round trip to the database, which costs far more than the rows. Here whoever
//! asks to write while no one else is writing commits everything asked for so far in one
//! transaction; those who asked meanwhile wait, and the next of them commits what queued up
//! behind. Nobody waits on a timer: a write alone goes at once.
//!
//! No crate does this for sqlx; the pattern is the one databases use for their own log
//! (group commit).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::StoreError;

type Reply<R> = oneshot::Sender<Result<R, String>>;

pub(crate) struct GroupCommit<T, R> {
    queued: Mutex<Vec<(T, Reply<R>)>>,
    /// Held by whoever is committing, until the commit is done.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            queued: Mutex::new(Vec::new()),
            turn: Arc::default(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Writes `request` with whatever else is queued, through `commit`, which gets the queued
    /// requests in the order they came and answers each, in that order.
    ///
    /// The commit runs in a task of its own: the caller that started it may go away (a
    /// platform that stopped waiting for its webhook's answer), and the others it carries
    /// still get theirs.
    pub(crate) async fn write<F>(
        &self,
        request: T,
        commit: impl FnOnce(Vec<T>) -> F,
    ) -> Result<R, StoreError>
    where
        F: Future<Output = Result<Vec<R>, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.lock_queue().push((request, reply));
        let turn = self.turn.clone().lock_owned().await;
        let queued = std::mem::take(&mut *self.lock_queue());
        // Empty when the one before took this request along.
        if !queued.is_empty() {
            let (requests, replies): (Vec<T>, Vec<Reply<R>>) = queued.into_iter().unzip();
            let committing = commit(requests);
            tokio::spawn(async move {
                match committing.await {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(error) => {
                        let error = error.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(error.clone()));
                        }
                    }
                }
                drop(turn);
            });
        } else {
            drop(turn);
        }
        match answer.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(StoreError::GroupCommit(error)),
            Err(_) => Err(StoreError::GroupCommit(
                "the write it was committed with stopped before it was done".to_owned(),
            )),
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(T, Reply<R>)>> {
        // A panic while holding the lock leaves a plain list behind, still consistent.
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
