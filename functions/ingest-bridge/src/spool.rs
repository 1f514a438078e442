//! The disk spool: where messages go when the in-memory buffer is full (SQS down or slow), and
//! where the buffer is saved on shutdown. Replayed in order, oldest first, when SQS answers again
//! and at the next start.
//!
//! Layout: `FMN_SPOOL_DIR/<id>.seg`, JSON Lines of `Pending`, ids ascending = oldest first. New
//! messages append to the newest segment (a new one every `SEGMENT_MESSAGES`/`SEGMENT_BYTES`);
//! the buffer saved at shutdown goes to a segment numbered before all others. A segment is
//! deleted only once every message of it was accepted by SQS, so a crash replays it (a crash
//! can thus repeat, never lose, what was spooled). A torn last line (a crash mid-write) is
//! skipped with a warning. A `LOCK` file holding the pid keeps two bridges off one spool.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::pending::Pending;

const SEGMENT_MESSAGES: usize = 1000;
const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Ids of the first segments: room below for segments saved at shutdown.
const FIRST_ID: u64 = 1 << 40;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool {0} is in use by process {1} (one bridge per spool directory)")]
    Locked(PathBuf, u32),
    #[error("spool is full ({0} bytes, FMN_SPOOL_MAX_BYTES)")]
    Full(u64),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    messages: u64,
    bytes: u64,
}

struct Tail {
    id: u64,
    file: BufWriter<File>,
}

pub struct Spool {
    dir: PathBuf,
    /// On disk, oldest first; the last one may be the tail being appended to.
    segments: VecDeque<Segment>,
    tail: Option<Tail>,
    /// Segment taken by `load_oldest`, still on disk until `remove_loaded`.
    loaded: Option<Segment>,
    max_bytes: u64,
    dirty: bool,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("segments", &self.segments)
            .field("loaded", &self.loaded)
            .finish()
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

impl Spool {
    /// Opens (creating) the spool in `dir` and finds the segments a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        lock(dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let bytes = entry.metadata().map_err(io(&path))?.len();
            let messages = count_lines(&path)?;
            segments.push(Segment {
                id,
                messages,
                bytes,
            });
        }
        segments.sort_by_key(|s| s.id);
        let spool = Self {
            dir: dir.to_path_buf(),
            segments: segments.into(),
            tail: None,
            loaded: None,
            max_bytes,
            dirty: false,
        };
        if !spool.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                messages = spool.messages(),
                segments = spool.segments.len(),
                "spool holds messages from a previous run; replaying them first"
            );
        }
        Ok(spool)
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.loaded.is_none()
    }

    /// True when segments wait to be loaded.
    pub fn has_unloaded(&self) -> bool {
        !self.segments.is_empty()
    }

    pub fn messages(&self) -> u64 {
        self.segments
            .iter()
            .chain(self.loaded.iter())
            .map(|s| s.messages)
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.segments
            .iter()
            .chain(self.loaded.iter())
            .map(|s| s.bytes)
            .sum()
    }

    /// Appends one message after everything else in the spool.
    pub fn append(&mut self, p: &Pending) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(p).expect("a Pending always serialises");
        line.push(b'\n');
        let len = line.len() as u64;
        if self.bytes() + len > self.max_bytes {
            return Err(SpoolError::Full(self.max_bytes));
        }
        let rotate = match self.segments.back() {
            Some(s) if self.tail.as_ref().is_some_and(|t| t.id == s.id) => {
                s.messages as usize >= SEGMENT_MESSAGES || s.bytes >= SEGMENT_BYTES
            }
            _ => true,
        };
        if rotate {
            self.close_tail()?;
            let id = self
                .segments
                .back()
                .map(|s| s.id)
                .into_iter()
                .chain(self.loaded.map(|s| s.id))
                .max()
                .map_or(FIRST_ID, |m| m.max(FIRST_ID - 1) + 1);
            let path = segment_path(&self.dir, id);
            self.tail = Some(Tail {
                id,
                file: open_append(&path)?,
            });
            self.segments.push_back(Segment {
                id,
                messages: 0,
                bytes: 0,
            });
        }
        let tail = self.tail.as_mut().expect("tail opened above");
        let path = segment_path(&self.dir, tail.id);
        tail.file.write_all(&line).map_err(io(&path))?;
        let seg = self.segments.back_mut().expect("tail segment listed");
        seg.messages += 1;
        seg.bytes += len;
        self.dirty = true;
        Ok(())
    }

    /// Hands what was appended to the OS (survives the process being killed) and, with
    /// `sync`, to the disk.
    pub fn flush(&mut self, sync: bool) -> Result<(), SpoolError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(tail) = self.tail.as_mut() {
            let path = segment_path(&self.dir, tail.id);
            tail.file.flush().map_err(io(&path))?;
            if sync {
                tail.file.get_ref().sync_data().map_err(io(&path))?;
                self.dirty = false;
            }
        }
        Ok(())
    }

    fn close_tail(&mut self) -> Result<(), SpoolError> {
        if let Some(mut tail) = self.tail.take() {
            let path = segment_path(&self.dir, tail.id);
            tail.file.flush().map_err(io(&path))?;
            tail.file.get_ref().sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Reads the oldest segment; it stays on disk until `remove_loaded`. None when a segment is
    /// already loaded or the spool is empty.
    pub fn load_oldest(&mut self) -> Result<Option<Vec<Pending>>, SpoolError> {
        if self.loaded.is_some() {
            return Ok(None);
        }
        let Some(seg) = self.segments.pop_front() else {
            return Ok(None);
        };
        if self.tail.as_ref().is_some_and(|t| t.id == seg.id) {
            self.close_tail()?;
        }
        let path = segment_path(&self.dir, seg.id);
        let file = File::open(&path).map_err(io(&path))?;
        let mut out = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io(&path))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Pending>(&line) {
                Ok(p) => out.push(p),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    line = n + 1,
                    error = %e,
                    "skipping an unreadable spool line (torn by a crash mid-write)"
                ),
            }
        }
        self.loaded = Some(Segment {
            messages: out.len() as u64,
            ..seg
        });
        Ok(Some(out))
    }

    /// Deletes the loaded segment: every message of it was accepted (or re-spooled).
    pub fn remove_loaded(&mut self) -> Result<(), SpoolError> {
        if let Some(seg) = self.loaded.take() {
            let path = segment_path(&self.dir, seg.id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }

    /// Saves `items` as a segment before every other (the buffer, at shutdown), then drops the
    /// loaded segment, whose remaining messages are among `items`.
    pub fn save_front(&mut self, items: &[Pending]) -> Result<(), SpoolError> {
        if !items.is_empty() {
            let id = self
                .segments
                .front()
                .map(|s| s.id)
                .into_iter()
                .chain(self.loaded.map(|s| s.id))
                .min()
                .unwrap_or(FIRST_ID)
                - 1;
            let path = segment_path(&self.dir, id);
            let tmp = self.dir.join(format!("{id:020}.tmp"));
            let mut bytes = 0u64;
            {
                let mut f = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
                for p in items {
                    let mut line = serde_json::to_vec(p).expect("a Pending always serialises");
                    line.push(b'\n');
                    bytes += line.len() as u64;
                    f.write_all(&line).map_err(io(&tmp))?;
                }
                f.flush().map_err(io(&tmp))?;
                f.get_ref().sync_all().map_err(io(&tmp))?;
            }
            fs::rename(&tmp, &path).map_err(io(&path))?;
            self.segments.push_front(Segment {
                id,
                messages: items.len() as u64,
                bytes,
            });
        }
        self.remove_loaded()?;
        self.close_tail()?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.close_tail();
        let _ = fs::remove_file(self.dir.join("LOCK"));
    }
}

/// A segment file opened for appending (created if need be).
pub(crate) fn open_append(path: &Path) -> Result<BufWriter<File>, SpoolError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    Ok(BufWriter::new(file))
}

fn count_lines(path: &Path) -> Result<u64, SpoolError> {
    let file = File::open(path).map_err(io(path))?;
    let mut n = 0;
    for line in BufReader::new(file).split(b'\n') {
        if !line.map_err(io(path))?.is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// Takes the spool's `LOCK` (a pid file); a lock left by a dead process is taken over.
fn lock(dir: &Path) -> Result<(), SpoolError> {
    let path = dir.join("LOCK");
    let me = std::process::id();
    if let Ok(text) = fs::read_to_string(&path) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            if pid != me && Path::new(&format!("/proc/{pid}")).exists() {
                return Err(SpoolError::Locked(dir.to_path_buf(), pid));
            }
        }
    }
    fs::write(&path, format!("{me}\n")).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: usize) -> Pending {
        Pending::sample(n)
    }

    fn ids(v: &[Pending]) -> Vec<String> {
        v.iter().map(|p| p.msg_id.clone()).collect()
    }

    #[test]
    fn replays_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
            for n in 0..2500 {
                s.append(&p(n)).unwrap();
            }
            s.flush(true).unwrap();
            assert_eq!(s.messages(), 2500);
        }
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(s.messages(), 2500);
        let mut all = Vec::new();
        while let Some(batch) = s.load_oldest().unwrap() {
            all.extend(batch);
            s.remove_loaded().unwrap();
        }
        assert_eq!(ids(&all), ids(&(0..2500).map(p).collect::<Vec<_>>()));
        assert!(s.is_empty());
    }

    #[test]
    fn a_saved_buffer_goes_before_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&p(10)).unwrap();
        let loaded = s.load_oldest().unwrap().unwrap();
        assert_eq!(ids(&loaded), ["id-10"]);
        s.append(&p(11)).unwrap();
        // Shutdown: the buffer holds 1 (fresh) and 10 (not yet sent, from the loaded segment).
        s.save_front(&[p(1), p(10)]).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        let mut all = Vec::new();
        while let Some(batch) = s.load_oldest().unwrap() {
            all.extend(batch);
            s.remove_loaded().unwrap();
        }
        assert_eq!(ids(&all), ["id-1", "id-10", "id-11"]);
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&p(1)).unwrap();
        s.flush(true).unwrap();
        drop(s);
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"msg_id\":\"tor").unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(ids(&s.load_oldest().unwrap().unwrap()), ["id-1"]);
    }

    #[test]
    fn the_size_limit_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 100).unwrap();
        s.append(&p(1)).unwrap();
        assert!(matches!(
            (0..10).try_for_each(|n| s.append(&p(n))),
            Err(SpoolError::Full(100))
        ));
    }

    #[test]
    fn a_live_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // pid 1 always exists.
        fs::write(dir.path().join("LOCK"), "1\n").unwrap();
        assert!(matches!(
            Spool::open(dir.path(), u64::MAX),
            Err(SpoolError::Locked(_, 1))
        ));
        fs::write(dir.path().join("LOCK"), "999999999\n").unwrap();
        Spool::open(dir.path(), u64::MAX).unwrap();
    }
}
