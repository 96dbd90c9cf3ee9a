//! The log of every request the simulator served and every webhook it delivered, kept in memory
//! (the newest entries only) for tests and people to inspect at `/_sim/log`.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

const CAPACITY: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    Request,
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Increases by one per entry; ask for entries after one with `since`.
    pub seq: u64,
    pub at_ms: u64,
    pub kind: LogKind,
    pub method: String,
    /// The request path, or the webhook's target URL.
    pub target: String,
    /// The HTTP status; 0 when a delivery got no answer (refused, timed out, dropped).
    pub status: u16,
    pub duration_ms: u64,
    /// What else is worth knowing: an injected fault, a retry number, an error.
    pub note: String,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<(u64, VecDeque<LogEntry>)>,
}

impl RequestLog {
    /// Appends an entry; `seq` and `at_ms` are filled in here.
    pub fn record(&self, mut entry: LogEntry) {
        let mut inner = self.inner.lock().expect("log lock");
        inner.0 += 1;
        entry.seq = inner.0;
        entry.at_ms = u64::try_from(crate::clock::since_epoch().as_millis()).unwrap_or(u64::MAX);
        if inner.1.len() == CAPACITY {
            inner.1.pop_front();
        }
        inner.1.push_back(entry);
    }

    /// Entries after `since`, oldest first, at most `limit`.
    pub fn entries(&self, since: u64, kind: Option<LogKind>, limit: usize) -> Vec<LogEntry> {
        let inner = self.inner.lock().expect("log lock");
        inner
            .1
            .iter()
            .filter(|entry| entry.seq > since && kind.is_none_or(|k| entry.kind == k))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: LogKind) -> LogEntry {
        LogEntry {
            seq: 0,
            at_ms: 0,
            kind,
            method: "GET".to_owned(),
            target: "/x".to_owned(),
            status: 200,
            duration_ms: 0,
            note: String::new(),
        }
    }

    #[test]
    fn entries_are_numbered_and_filtered() {
        let log = RequestLog::default();
        log.record(entry(LogKind::Request));
        log.record(entry(LogKind::Webhook));
        log.record(entry(LogKind::Request));
        let all = log.entries(0, None, 10);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        let webhooks = log.entries(0, Some(LogKind::Webhook), 10);
        assert_eq!(webhooks.len(), 1);
        assert_eq!(log.entries(2, None, 10).len(), 1);
    }
}
