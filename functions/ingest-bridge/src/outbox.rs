//! The outbox: messages waiting for SQS, in order. A bounded in-memory buffer first; beyond
//! it (SQS down or slower than the bus) the disk spool. While the spool holds anything, new
//! messages are appended to it, so the order is kept: the buffer drains, then the spool is
//! loaded back segment by segment, oldest first.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::pending::{Ack, Pending};
use crate::spool::{Spool, SpoolError};

/// Where `push` put a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    Memory,
    /// Appended to the spool; its acknowledgement (if any) is due once the spool is synced.
    Spool(Option<Ack>),
}

/// What [`Outbox::save`] wrote at shutdown.
#[derive(Debug, Default)]
pub struct Saved {
    pub messages: usize,
    /// Acknowledgements now due (with their message ids): the spool holding them is synced.
    pub acks: Vec<(String, Ack)>,
}

pub struct Outbox {
    mem: VecDeque<Pending>,
    mem_bytes: usize,
    in_flight: usize,
    in_flight_bytes: usize,
    cap_messages: usize,
    cap_bytes: usize,
    spool: Spool,
    /// Messages of the loaded spool segment not yet accepted by SQS.
    loaded_left: usize,
    /// When the oldest waiting message has lingered long enough for a partial batch.
    linger_until: Option<Instant>,
}

impl Outbox {
    pub fn new(spool: Spool, cap_messages: usize, cap_bytes: usize) -> Self {
        Self {
            mem: VecDeque::new(),
            mem_bytes: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            cap_messages: cap_messages.max(1),
            cap_bytes: cap_bytes.max(1),
            spool,
            loaded_left: 0,
            linger_until: None,
        }
    }

    /// Messages in memory, waiting or in flight.
    pub fn buffered(&self) -> usize {
        self.mem.len() + self.in_flight
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.in_flight == 0 && self.spool.is_empty()
    }

    pub fn waiting(&self) -> usize {
        self.mem.len()
    }

    /// Queues a message: in memory if there is room and the spool is empty, else in the spool.
    /// `to_spool` sends it to the spool anyway (SQS is failing and a broker waits for its
    /// acknowledgement).
    pub fn push(
        &mut self,
        mut p: Pending,
        now: Instant,
        linger: Duration,
        to_spool: bool,
    ) -> Result<Placed, Box<(Pending, SpoolError)>> {
        let full = self.mem.len() + self.in_flight >= self.cap_messages
            || self.mem_bytes + self.in_flight_bytes + p.size() > self.cap_bytes;
        if self.spool.is_empty() && !full && !to_spool {
            if self.mem.is_empty() {
                self.linger_until = Some(now + linger);
            }
            self.mem_bytes += p.size();
            self.mem.push_back(p);
            Ok(Placed::Memory)
        } else {
            match self.spool.append(&p) {
                Ok(()) => Ok(Placed::Spool(p.ack.take())),
                Err(e) => Err(Box::new((p, e))),
            }
        }
    }

    /// Moves the waiting messages a broker waits for (those with an acknowledgement) to the
    /// spool, oldest first, and returns their ids and acknowledgements, due once the spool is
    /// synced: while SQS is failing, the broker need not hold them.
    pub fn spill(&mut self) -> Result<Vec<(String, Ack)>, SpoolError> {
        let mut spilled = Vec::new();
        let mut kept = VecDeque::with_capacity(self.mem.len());
        let mut failed = None;
        for mut p in self.mem.drain(..) {
            if p.ack.is_none() || failed.is_some() {
                kept.push_back(p);
                continue;
            }
            match self.spool.append(&p) {
                Ok(()) => {
                    self.mem_bytes -= p.size();
                    if let Some(ack) = p.ack.take() {
                        spilled.push((p.msg_id, ack));
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    kept.push_back(p);
                }
            }
        }
        self.mem = kept;
        if self.mem.is_empty() {
            self.linger_until = None;
        }
        match failed {
            // What was appended stays appended; the rest waits in memory as before.
            Some(e) if spilled.is_empty() => Err(e),
            _ => Ok(spilled),
        }
    }

    /// Hands appended spool lines to the OS (and the disk with `sync`).
    pub fn flush_spool(&mut self, sync: bool) -> Result<(), SpoolError> {
        self.spool.flush(sync)
    }

    /// Whether a batch should be sent now: a full one is ready, or the oldest message has
    /// lingered long enough, or it comes from the spool, or we are flushing.
    pub fn ready(&self, now: Instant, max_batch: usize, flushing: bool) -> bool {
        let Some(front) = self.mem.front() else {
            return false;
        };
        flushing
            || front.from_spool
            || self.mem.len() >= max_batch
            || self.mem_bytes >= fmn_aws::sqs::MAX_MESSAGE_BYTES
            || self.linger_until.is_none_or(|t| now >= t)
    }

    /// When a partial batch becomes ready.
    pub fn linger_deadline(&self) -> Option<Instant> {
        if self.mem.is_empty() {
            None
        } else {
            self.linger_until
        }
    }

    /// Takes the next batch: up to `max_batch` messages totalling at most `max_bytes`.
    pub fn take_batch(&mut self, max_batch: usize, max_bytes: usize) -> Vec<Pending> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.mem.front() {
            if batch.len() >= max_batch
                || (!batch.is_empty() && (bytes + front.size() > max_bytes || front.alone))
            {
                break;
            }
            if front.alone && batch.is_empty() {
                let p = self.mem.pop_front().expect("front exists");
                bytes += p.size();
                batch.push(p);
                break;
            }
            let p = self.mem.pop_front().expect("front exists");
            bytes += p.size();
            batch.push(p);
        }
        self.mem_bytes -= bytes;
        self.in_flight += batch.len();
        self.in_flight_bytes += bytes;
        if self.mem.is_empty() {
            self.linger_until = None;
        }
        batch
    }

    /// Puts messages SQS did not take back at the front, in their order.
    pub fn requeue(&mut self, batch: Vec<Pending>) {
        for p in batch.into_iter().rev() {
            self.in_flight -= 1;
            self.in_flight_bytes -= p.size();
            self.mem_bytes += p.size();
            self.mem.push_front(p);
        }
    }

    /// Puts a message (not in flight) at the very front.
    pub fn push_front(&mut self, p: Pending) {
        self.mem_bytes += p.size();
        self.mem.push_front(p);
    }

    /// Records messages as done (accepted, or given up with a logged reason).
    pub fn done(&mut self, batch: &[Pending]) -> Result<(), SpoolError> {
        for p in batch {
            self.in_flight -= 1;
            self.in_flight_bytes -= p.size();
            if p.from_spool {
                self.loaded_left = self.loaded_left.saturating_sub(1);
            }
        }
        if self.loaded_left == 0 && batch.iter().any(|p| p.from_spool) {
            self.spool.remove_loaded()?;
        }
        Ok(())
    }

    /// Loads the oldest spool segment when memory has drained. Returns how many were loaded.
    pub fn refill(&mut self) -> Result<usize, SpoolError> {
        if !self.mem.is_empty() || self.loaded_left > 0 || !self.spool.has_unloaded() {
            return Ok(0);
        }
        // A segment whose messages all went is removed in `done`; an empty one here.
        self.spool.remove_loaded()?;
        let Some(items) = self.spool.load_oldest()? else {
            return Ok(0);
        };
        let n = items.len();
        if n == 0 {
            self.spool.remove_loaded()?;
            return Ok(0);
        }
        self.loaded_left = n;
        for mut p in items {
            p.from_spool = true;
            self.mem_bytes += p.size();
            self.mem.push_back(p);
        }
        Ok(n)
    }

    /// At shutdown, with nothing in flight: saves the buffer before the rest of the spool.
    pub fn save(&mut self) -> Result<Saved, SpoolError> {
        debug_assert_eq!(self.in_flight, 0);
        self.spool.flush(true)?;
        let mut items: Vec<Pending> = self.mem.drain(..).collect();
        self.mem_bytes = 0;
        self.spool.save_front(&items)?;
        self.loaded_left = 0;
        Ok(Saved {
            messages: items.len(),
            acks: items
                .iter_mut()
                .filter_map(|p| Some((p.msg_id.clone(), p.ack.take()?)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: usize) -> Pending {
        Pending::sample(n)
    }

    fn drain_all(o: &mut Outbox) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            o.refill().unwrap();
            let batch = o.take_batch(10, usize::MAX);
            if batch.is_empty() {
                break;
            }
            out.extend(batch.iter().map(|p| p.msg_id.clone()));
            o.done(&batch).unwrap();
        }
        out
    }

    #[test]
    fn overflow_goes_to_the_spool_and_comes_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let mut o = Outbox::new(spool, 5, usize::MAX);
        let now = Instant::now();
        let mut placed = Vec::new();
        for n in 0..30 {
            placed.push(o.push(p(n), now, Duration::ZERO, false).unwrap());
        }
        assert_eq!(placed.iter().filter(|p| **p == Placed::Memory).count(), 5);
        // A failed send goes back to the front.
        let batch = o.take_batch(3, usize::MAX);
        o.requeue(batch);
        let got = drain_all(&mut o);
        let want: Vec<String> = (0..30).map(|n| format!("id-{n}")).collect();
        assert_eq!(got, want);
        assert!(o.is_empty());
        assert_eq!(
            o.push(p(99), now, Duration::ZERO, false).unwrap(),
            Placed::Memory
        );
    }

    #[test]
    fn the_buffer_saved_at_shutdown_is_replayed_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 3, usize::MAX);
            for n in 0..8 {
                o.push(p(n), now, Duration::ZERO, false).unwrap();
            }
            let sent = o.take_batch(1, usize::MAX);
            o.done(&sent).unwrap();
            assert_eq!(o.save().unwrap().messages, 2);
        }
        let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 3, usize::MAX);
        o.push(p(100), now, Duration::ZERO, false).unwrap();
        let got = drain_all(&mut o);
        let want: Vec<String> = [1, 2, 3, 4, 5, 6, 7, 100]
            .iter()
            .map(|n| format!("id-{n}"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_partly_sent_segment_is_saved_without_what_was_sent() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 1, usize::MAX);
            for n in 0..6 {
                o.push(p(n), now, Duration::ZERO, false).unwrap();
            }
            let first = o.take_batch(10, usize::MAX);
            o.done(&first).unwrap();
            assert_eq!(o.refill().unwrap(), 5);
            let two = o.take_batch(2, usize::MAX);
            o.done(&two).unwrap();
            assert_eq!(o.save().unwrap().messages, 3);
        }
        let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 10, usize::MAX);
        assert_eq!(drain_all(&mut o), ["id-3", "id-4", "id-5"]);
    }

    #[test]
    fn a_message_marked_alone_goes_in_a_batch_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 100, usize::MAX);
        let now = Instant::now();
        for n in 0..4 {
            let mut m = p(n);
            m.alone = n == 1;
            o.push(m, now, Duration::ZERO, false).unwrap();
        }
        let ids = |b: Vec<Pending>| b.into_iter().map(|p| p.msg_id).collect::<Vec<_>>();
        assert_eq!(ids(o.take_batch(10, usize::MAX)), ["id-0"]);
        assert_eq!(ids(o.take_batch(10, usize::MAX)), ["id-1"]);
        assert_eq!(ids(o.take_batch(10, usize::MAX)), ["id-2", "id-3"]);
    }

    #[test]
    fn batches_respect_the_byte_limit_and_linger() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::new(Spool::open(dir.path(), u64::MAX).unwrap(), 100, usize::MAX);
        let now = Instant::now();
        let linger = Duration::from_millis(50);
        o.push(p(1), now, linger, false).unwrap();
        assert!(!o.ready(now, 10, false));
        assert!(o.ready(now + linger, 10, false));
        assert!(o.ready(now, 10, true));
        for n in 2..=10 {
            o.push(p(n), now, linger, false).unwrap();
        }
        assert!(o.ready(now, 10, false));
        let size = p(1).size();
        assert_eq!(o.take_batch(10, size * 3).len(), 3);
    }
}
