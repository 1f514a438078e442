//! The write-ahead journal: every message the bridge holds only in memory (fedmsg's, whose bus
//! cannot deliver them again) is appended here, and synced in groups, before it counts as
//! received; so a crash (`kill -9`, power loss) loses nothing the bridge had received. A
//! message leaves the journal when SQS took it, or when it moved to the spool (which is
//! durable itself). AMQP deliveries need no journal: the broker keeps them until acknowledged.
//!
//! Layout: `<spool dir>/journal/<id>.wal`, JSON Lines: a `Pending` per message, and a
//! `{"released": id}` line when one leaves (not synced: a lost release line means a repeat,
//! not a loss). A new segment every `SEGMENT_MESSAGES`; a segment is deleted once none of its
//! messages is outstanding and it is no longer the one being appended to. At start, what a
//! previous run left unreleased is handed back for the spool (a message whose release was not
//! written may already be in SQS: a repeat, never a loss).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::pending::Pending;
use crate::spool::{io, open_append, SpoolError};

const SEGMENT_MESSAGES: u64 = 1000;

/// One journal line.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Released { released: String },
    Message(Box<Pending>),
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

pub struct Journal {
    dir: PathBuf,
    /// Outstanding messages per segment.
    outstanding: BTreeMap<u64, u64>,
    /// Which segment holds each outstanding message.
    segment_of: HashMap<String, u64>,
    tail: Option<(u64, u64, BufWriter<File>)>,
    next_id: u64,
    dirty: bool,
}

impl Journal {
    /// Opens the journal under `spool_dir` and returns what a previous run left in it (oldest
    /// first), now the caller's to keep (the spool); those segments are deleted once the
    /// caller says they are kept ([`Journal::forget_recovered`]).
    pub fn open(spool_dir: &Path) -> Result<(Self, Vec<Pending>), SpoolError> {
        let dir = spool_dir.join("journal");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut recovered = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut released = std::collections::HashSet::new();
        for id in &ids {
            let path = segment_path(&dir, *id);
            let file = File::open(&path).map_err(io(&path))?;
            for line in BufReader::new(file).lines() {
                let line = line.map_err(io(&path))?;
                // A torn last line (the crash came mid-write) was never synced: not received.
                match serde_json::from_str::<Line>(&line) {
                    Ok(Line::Message(p)) => {
                        if seen.insert(p.msg_id.clone()) {
                            recovered.push(*p);
                        }
                    }
                    Ok(Line::Released { released: id }) => {
                        released.insert(id);
                    }
                    Err(_) => {}
                }
            }
        }
        recovered.retain(|p| !released.contains(&p.msg_id));
        if !recovered.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                messages = recovered.len(),
                "the journal holds messages a previous run had received; replaying them"
            );
        }
        let journal = Self {
            next_id: ids.last().map_or(1, |id| id + 1),
            dir,
            outstanding: BTreeMap::new(),
            segment_of: HashMap::new(),
            tail: None,
            dirty: false,
        };
        Ok((journal, recovered))
    }

    /// Deletes what [`Journal::open`] recovered, once the caller keeps it elsewhere.
    pub fn forget_recovered(&mut self) -> Result<(), SpoolError> {
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let recovered = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|id| id < self.next_id && !self.outstanding.contains_key(&id));
            if recovered {
                fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        Ok(())
    }

    /// Appends a message (written to the OS at the next [`Journal::flush`]).
    pub fn append(&mut self, p: &Pending) -> Result<(), SpoolError> {
        let rotate = self
            .tail
            .as_ref()
            .is_none_or(|(_, count, _)| *count >= SEGMENT_MESSAGES);
        if rotate {
            self.close_tail()?;
            let id = self.next_id;
            self.next_id += 1;
            self.tail = Some((id, 0, open_append(&segment_path(&self.dir, id))?));
        }
        let (id, count, file) = self.tail.as_mut().expect("a tail was opened");
        let mut line = serde_json::to_vec(p).expect("a Pending always serialises");
        debug_assert!(
            serde_json::from_slice::<Line>(&line).is_ok_and(|l| matches!(l, Line::Message(_)))
        );
        line.push(b'\n');
        let path = segment_path(&self.dir, *id);
        file.write_all(&line).map_err(io(&path))?;
        *count += 1;
        *self.outstanding.entry(*id).or_default() += 1;
        self.segment_of.insert(p.msg_id.clone(), *id);
        self.dirty = true;
        Ok(())
    }

    /// Hands appended lines to the OS, and to the disk with `sync` (group commit).
    pub fn flush(&mut self, sync: bool) -> Result<(), SpoolError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some((id, _, file)) = self.tail.as_mut() {
            let path = segment_path(&self.dir, *id);
            file.flush().map_err(io(&path))?;
            if sync {
                file.get_ref().sync_data().map_err(io(&path))?;
                self.dirty = false;
            }
        }
        Ok(())
    }

    /// Whether appended messages wait for a sync.
    pub fn needs_sync(&self) -> bool {
        self.dirty
    }

    /// A message left memory for good (in SQS, in the spool, or given up): its segment is
    /// deleted once nothing in it is outstanding.
    pub fn release(&mut self, msg_id: &str) -> Result<(), SpoolError> {
        let Some(id) = self.segment_of.remove(msg_id) else {
            return Ok(());
        };
        if let Some((tail, _, file)) = self.tail.as_mut() {
            let mut line = serde_json::to_vec(&Line::Released {
                released: msg_id.to_string(),
            })
            .expect("a release line serialises");
            line.push(b'\n');
            let path = segment_path(&self.dir, *tail);
            file.write_all(&line).map_err(io(&path))?;
        }
        let left = self.outstanding.get_mut(&id).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        let is_tail = self.tail.as_ref().is_some_and(|(t, _, _)| *t == id);
        if left == Some(0) && !is_tail {
            self.outstanding.remove(&id);
            let path = segment_path(&self.dir, id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }

    /// Messages in the journal not yet released.
    pub fn outstanding(&self) -> usize {
        self.segment_of.len()
    }

    /// At a clean stop, with everything in SQS or the spool: nothing is outstanding.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        self.tail = None;
        self.outstanding.clear();
        self.segment_of.clear();
        self.dirty = false;
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            if entry.path().extension().is_some_and(|e| e == "wal") {
                fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        Ok(())
    }

    fn close_tail(&mut self) -> Result<(), SpoolError> {
        if let Some((id, _, mut file)) = self.tail.take() {
            let path = segment_path(&self.dir, id);
            file.flush().map_err(io(&path))?;
            file.get_ref().sync_data().map_err(io(&path))?;
            // A closed segment whose messages all went is deleted now.
            if self.outstanding.get(&id) == Some(&0) {
                self.outstanding.remove(&id);
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> usize {
        fs::read_dir(dir.join("journal"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "wal")
            })
            .count()
    }

    #[test]
    fn what_was_synced_and_not_released_survives_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, recovered) = Journal::open(dir.path()).unwrap();
            assert!(recovered.is_empty());
            for n in 0..2500 {
                j.append(&Pending::sample(n)).unwrap();
            }
            j.flush(true).unwrap();
            // SQS took all but three.
            for n in (0..2500).filter(|n| ![7, 1500, 2499].contains(n)) {
                j.release(&format!("id-{n}")).unwrap();
            }
            assert_eq!(j.outstanding(), 3);
            // The crash: no clean stop (the journal is simply dropped).
        }
        let (mut j, recovered) = Journal::open(dir.path()).unwrap();
        let ids: Vec<&str> = recovered.iter().map(|p| p.msg_id.as_str()).collect();
        assert_eq!(ids, ["id-7", "id-1500", "id-2499"]);
        j.forget_recovered().unwrap();
        assert_eq!(files(dir.path()), 0);
        let (_, again) = Journal::open(dir.path()).unwrap();
        assert!(again.is_empty(), "recovered once");
    }

    #[test]
    fn released_segments_are_deleted_and_a_clean_stop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        for n in 0..2100 {
            j.append(&Pending::sample(n)).unwrap();
        }
        j.flush(true).unwrap();
        assert_eq!(files(dir.path()), 3);
        for n in 0..1000 {
            j.release(&format!("id-{n}")).unwrap();
        }
        assert_eq!(files(dir.path()), 2, "the first segment went");
        j.clear().unwrap();
        assert_eq!(files(dir.path()), 0);
        drop(j);
        let (_, recovered) = Journal::open(dir.path()).unwrap();
        assert!(recovered.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_not_received() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, _) = Journal::open(dir.path()).unwrap();
            j.append(&Pending::sample(1)).unwrap();
            j.flush(true).unwrap();
        }
        let path = segment_path(&dir.path().join("journal"), 1);
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(b"{\"msg_id\":\"id-2\",\"bo").unwrap();
        let (_, recovered) = Journal::open(dir.path()).unwrap();
        assert_eq!(recovered.len(), 1);
    }
}
