//! What the match function hands to delivery: one job per (message, user, destination), with
//! everything needed to render it, so delivery never re-reads the message.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matching::Match;
use crate::message::{Envelope, Origin};
use crate::meta::{Metadata, Severity};
use crate::prefs::Destination;

/// The message as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub msg_id: String,
    pub topic: String,
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default)]
    pub usernames: Vec<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    /// How many usernames the message named, when `usernames` holds only the first
    /// [`MAX_JOB_LIST`] of them (`None`: the list is whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usernames_total: Option<usize>,
    /// Likewise for `packages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages_total: Option<usize>,
    /// When the message was published, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    #[serde(default)]
    pub severity: Severity,
    /// The bus the message came from (absent in stored jobs: fedmsg).
    #[serde(default, skip_serializing_if = "Origin::is_fedmsg")]
    pub origin: Origin,
    /// The message's long text (a fedora-messaging schema's `__str__`), the mail body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_text: Option<String>,
}

impl Notification {
    pub fn new(envelope: &Envelope, meta: &Metadata) -> Self {
        Self {
            msg_id: envelope.msg_id().to_string(),
            topic: envelope.topic().as_str().to_string(),
            app: meta.app.clone(),
            agent: meta.agent.clone(),
            title: meta.title.clone(),
            subtitle: meta.subtitle.clone(),
            link: meta.link.clone(),
            usernames: capped(meta.usernames.iter()).0,
            usernames_total: capped(meta.usernames.iter()).1,
            packages: capped(meta.packages.iter()).0,
            packages_total: capped(meta.packages.iter()).1,
            timestamp: envelope.timestamp_secs(),
            severity: meta.severity,
            origin: envelope.origin(),
            long_text: meta.long_text.as_deref().map(truncated_text),
        }
    }
}

/// The most usernames or packages a job carries: a message naming thousands (a mass rebuild)
/// would otherwise make every job of it too large for SQS (256 KiB), and the mail lists them
/// no further anyway. The total travels with the list.
pub const MAX_JOB_LIST: usize = 100;
/// The most bytes of a message's long text a job carries, for the same reason.
pub const MAX_JOB_TEXT: usize = 64 * 1024;

/// The first [`MAX_JOB_LIST`] items, and their total when there were more.
fn capped<'a>(items: impl ExactSizeIterator<Item = &'a String>) -> (Vec<String>, Option<usize>) {
    let total = items.len();
    let kept = items.take(MAX_JOB_LIST).cloned().collect();
    (kept, (total > MAX_JOB_LIST).then_some(total))
}

/// `text` cut to at most [`MAX_JOB_TEXT`] bytes, on a character boundary, marked when cut.
fn truncated_text(text: &str) -> String {
    if text.len() <= MAX_JOB_TEXT {
        return text.to_string();
    }
    let mut end = MAX_JOB_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… truncated]", &text[..end])
}

/// One delivery to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// Deterministic: the same message for the same destination always has the same id, so a
    /// redelivered ingest message produces the same job and delivery can drop the repeat.
    pub job_id: String,
    pub user: String,
    pub filter_id: String,
    pub filter_name: String,
    pub reason: String,
    /// The reason's stable code (`own-package`, `catalogue:<entry>`…; see
    /// [`crate::matching::reason_code`]), mailed as `X-Fmn-Reason`. Empty in jobs made before
    /// it existed and in notices that no filter caused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_code: String,
    pub destination: Destination,
    pub notification: Notification,
}

impl DeliveryJob {
    pub fn new(m: &Match, notification: &Notification) -> Self {
        Self {
            job_id: job_id(&notification.msg_id, &m.user, &m.destination),
            user: m.user.to_string(),
            filter_id: m.filter_id.to_string(),
            filter_name: m.filter_name.to_string(),
            reason: m.reason.to_string(),
            reason_code: m.reason_code.to_string(),
            destination: Destination::clone(&m.destination),
            notification: notification.clone(),
        }
    }

    /// The digest queue this job waits in: one per user and destination.
    pub fn digest_key(&self) -> String {
        digest_key(&self.user, &self.destination.id)
    }
}

/// The id of the job delivering `msg_id` to one of `user`'s destinations. The address is part
/// of it, so changing a destination's address is a different delivery.
pub fn job_id(msg_id: &str, user: &str, destination: &Destination) -> String {
    let mut h = Sha256::new();
    for part in [
        msg_id,
        user,
        &destination.id,
        destination.kind.as_str(),
        &destination.address,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The key of a user's destination's digest.
pub fn digest_key(user: &str, destination_id: &str) -> String {
    format!("{user}/{destination_id}")
}

/// Immediate e-mail jobs for one address that one match batch made together (a burst: a mass
/// rebuild of a followed user's packages), sent as one mail. Each job keeps its own id and is
/// still delivered once: deliver-email claims every job's own delivery record, so a job that
/// also travels alone or in another bundle (the match batch retried) goes out once in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobBundle {
    /// [`bundle_id`] of the jobs.
    pub bundle_id: String,
    /// Jobs for one user, destination and address; distinct ids.
    pub jobs: Vec<DeliveryJob>,
}

/// The id of the bundle of jobs `ids`: the same jobs, in any order, give the same id (the
/// mail's `Message-ID`, so a repeated bundle is one thread in a mail client), made as a
/// digest's of the same jobs is.
pub fn bundle_id<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    crate::digest::digest_id(ids)
}

/// What one message on the e-mail queue carries: a job, or a bundle of them. A bundle's JSON
/// has `jobs`; a job's has none.
#[derive(Debug, Clone, PartialEq)]
pub enum EmailQueueBody {
    One(Box<DeliveryJob>),
    Bundle(JobBundle),
}

impl EmailQueueBody {
    /// Parses a queue message's body.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(body)?;
        if value.get("jobs").is_some() {
            serde_json::from_value(value).map(Self::Bundle)
        } else {
            serde_json::from_value(value).map(|job| Self::One(Box::new(job)))
        }
    }

    /// The job's or the bundle's id.
    pub fn id(&self) -> &str {
        match self {
            Self::One(job) => &job.job_id,
            Self::Bundle(bundle) => &bundle.bundle_id,
        }
    }

    pub fn to_json(&self) -> String {
        match self {
            Self::One(job) => serde_json::to_string(job),
            Self::Bundle(bundle) => serde_json::to_string(bundle),
        }
        .expect("jobs serialise")
    }
}

/// `FMN_EMAIL_BURST` default: from three immediate mails for one address in one match batch,
/// they go as one. Two stay apart: a build and its update within a second are ordinary, and
/// people filter their mail on each message's `X-Fedmsg-*` headers.
pub const DEFAULT_EMAIL_BURST: usize = 3;

/// The most jobs in one bundle: a match batch holds at most ten messages, and each job's record
/// key travels as an SES message tag.
pub const MAX_BUNDLE_JOBS: usize = 10;

/// The e-mail queue's messages for `jobs` (one match batch's immediate e-mail jobs, in order),
/// each with the indices of the jobs it carries: the jobs of one user, destination and address
/// go as bundles when there are at least `burst` of them (`0`: never), at most
/// [`MAX_BUNDLE_JOBS`] and `max_bytes` of JSON a bundle; the others one by one. A job id seen
/// before rides with its first copy: each id goes once.
pub fn email_queue_bodies(
    jobs: &[DeliveryJob],
    burst: usize,
    max_bytes: usize,
) -> Vec<(EmailQueueBody, Vec<usize>)> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let key = (
            job.user.as_str(),
            job.destination.id.as_str(),
            job.destination.address.as_str(),
        );
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let mut out = Vec::new();
    for group in groups {
        // (job index, the indices riding with it): the same message twice in a batch makes
        // the same job twice, and one queue call takes an id once.
        let mut distinct: Vec<(usize, Vec<usize>)> = Vec::new();
        for i in group {
            match distinct
                .iter_mut()
                .find(|(first, _)| jobs[*first].job_id == jobs[i].job_id)
            {
                Some((_, riders)) => riders.push(i),
                None => distinct.push((i, vec![i])),
            }
        }
        if burst == 0 || distinct.len() < burst {
            out.extend(
                distinct
                    .into_iter()
                    .map(|(i, riders)| (EmailQueueBody::One(Box::new(jobs[i].clone())), riders)),
            );
            continue;
        }
        let mut chunk: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut bytes = 0;
        for (i, riders) in distinct {
            let size = serde_json::to_string(&jobs[i]).map_or(0, |j| j.len()) + 1;
            if !chunk.is_empty() && (chunk.len() == MAX_BUNDLE_JOBS || bytes + size > max_bytes) {
                out.push(bundle_of(jobs, std::mem::take(&mut chunk)));
                bytes = 0;
            }
            bytes += size;
            chunk.push((i, riders));
        }
        if !chunk.is_empty() {
            out.push(bundle_of(jobs, chunk));
        }
    }
    out
}

/// The queue body of `chunk` (one job alone, or a bundle) and the indices it carries.
fn bundle_of(
    jobs: &[DeliveryJob],
    chunk: Vec<(usize, Vec<usize>)>,
) -> (EmailQueueBody, Vec<usize>) {
    let carried: Vec<usize> = chunk.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    if let [(only, _)] = chunk.as_slice() {
        return (EmailQueueBody::One(Box::new(jobs[*only].clone())), carried);
    }
    let members: Vec<DeliveryJob> = chunk.iter().map(|(i, _)| jobs[*i].clone()).collect();
    let bundle = JobBundle {
        bundle_id: bundle_id(members.iter().map(|j| j.job_id.as_str())),
        jobs: members,
    };
    (EmailQueueBody::Bundle(bundle), carried)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(address: &str) -> Destination {
        Destination::email("email-1", address).confirmed(true)
    }

    #[test]
    fn job_ids_are_deterministic_and_distinct() {
        let a = job_id("m1", "alice", &dest("a@example.org"));
        assert_eq!(a, job_id("m1", "alice", &dest("a@example.org")));
        assert_eq!(a.len(), 32);
        assert_ne!(a, job_id("m2", "alice", &dest("a@example.org")));
        assert_ne!(a, job_id("m1", "alice", &dest("b@example.org")));
        // No ambiguity from concatenation.
        assert_ne!(
            job_id("m1a", "lice", &dest("a@example.org")),
            job_id("m1", "alice", &dest("a@example.org"))
        );
    }

    #[test]
    fn a_job_carries_at_most_the_first_hundred_names_and_their_total() {
        let envelope = Envelope::from_value(serde_json::json!({
            "msg_id": "2024-mass-rebuild",
            "topic": "org.fedoraproject.prod.koji.build.state.change",
            "timestamp": 1.7e9,
            "msg": {},
        }))
        .unwrap();
        let meta = Metadata {
            packages: (0..5000).map(|i| format!("package-{i:05}")).collect(),
            usernames: ["alice".to_string()].into(),
            long_text: Some("é".repeat(MAX_JOB_TEXT)),
            ..Metadata::default()
        };
        let n = Notification::new(&envelope, &meta);
        assert_eq!(n.packages.len(), MAX_JOB_LIST);
        assert_eq!(n.packages[0], "package-00000");
        assert_eq!(n.packages_total, Some(5000));
        assert_eq!((n.usernames.len(), n.usernames_total), (1, None));
        let text = n.long_text.as_deref().unwrap();
        assert!(text.len() < MAX_JOB_TEXT + 32 && text.ends_with("[… truncated]"));
        // The whole job stays far below SQS's 256 KiB.
        let body = serde_json::to_string(&n).unwrap();
        assert!(body.len() < 100 * 1024, "{} bytes", body.len());
    }

    fn mail_job(user: &str, address: &str, msg_id: &str) -> DeliveryJob {
        let destination = dest(address);
        DeliveryJob {
            job_id: job_id(msg_id, user, &destination),
            user: user.into(),
            filter_id: "filter-1".into(),
            filter_name: "Packages I follow".into(),
            reason: "package followed".into(),
            reason_code: String::new(),
            destination,
            notification: Notification {
                msg_id: msg_id.into(),
                topic: "org.fedoraproject.prod.buildsys.build.state.change".into(),
                app: "koji".into(),
                agent: None,
                title: format!("build {msg_id} complete"),
                subtitle: None,
                link: None,
                usernames: Vec::new(),
                packages: Vec::new(),
                usernames_total: None,
                packages_total: None,
                timestamp: None,
                severity: Severity::default(),
                origin: Origin::default(),
                long_text: None,
            },
        }
    }

    /// (bundle or one, the job ids it carries, the indices it answers for)
    fn shape(bodies: &[(EmailQueueBody, Vec<usize>)]) -> Vec<(&'static str, usize, Vec<usize>)> {
        bodies
            .iter()
            .map(|(body, carried)| match body {
                EmailQueueBody::One(_) => ("one", 1, carried.clone()),
                EmailQueueBody::Bundle(b) => ("bundle", b.jobs.len(), carried.clone()),
            })
            .collect()
    }

    #[test]
    fn a_burst_for_one_address_goes_as_a_bundle_and_the_rest_one_by_one() {
        let jobs = vec![
            mail_job("alice", "a@example.org", "m1"),
            mail_job("bob", "b@example.org", "m1"),
            mail_job("alice", "a@example.org", "m2"),
            mail_job("bob", "b@example.org", "m2"),
            mail_job("alice", "a@example.org", "m3"),
            // Same user and destination id, another address: another mail.
            mail_job("alice", "other@example.org", "m3"),
        ];
        let bodies = email_queue_bodies(&jobs, 3, 200_000);
        assert_eq!(
            shape(&bodies),
            [
                ("bundle", 3, vec![0, 2, 4]),
                ("one", 1, vec![1]),
                ("one", 1, vec![3]),
                ("one", 1, vec![5]),
            ]
        );
        let EmailQueueBody::Bundle(bundle) = &bodies[0].0 else {
            panic!("a bundle first")
        };
        let ids: Vec<&str> = bundle.jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, [&jobs[0].job_id, &jobs[2].job_id, &jobs[4].job_id]);
        assert_eq!(bundle.bundle_id, bundle_id(ids.iter().rev().copied()));
        // The same message twice (SQS delivers at least once): its jobs go once.
        let mut twice = jobs.clone();
        twice.push(jobs[1].clone());
        assert_eq!(
            shape(&email_queue_bodies(&twice, 3, 200_000))[1],
            ("one", 1, vec![1, 6])
        );
        // 0: never bundled; 2: alice's three and bob's two.
        assert!(shape(&email_queue_bodies(&jobs, 0, 200_000))
            .iter()
            .all(|(kind, _, _)| *kind == "one"));
        assert_eq!(
            shape(&email_queue_bodies(&jobs, 2, 200_000))[..2],
            [("bundle", 3, vec![0, 2, 4]), ("bundle", 2, vec![1, 3])]
        );
    }

    #[test]
    fn bundles_are_split_by_count_and_size_and_a_repeated_job_rides_with_its_first_copy() {
        let mut jobs: Vec<DeliveryJob> = (0..23)
            .map(|i| mail_job("alice", "a@example.org", &format!("m{i}")))
            .collect();
        jobs.push(jobs[1].clone());
        let bodies = email_queue_bodies(&jobs, 3, 200_000);
        let mut first: Vec<usize> = (0..MAX_BUNDLE_JOBS).collect();
        first.insert(2, 23);
        assert_eq!(
            shape(&bodies),
            [
                ("bundle", 10, first),
                ("bundle", 10, (10..20).collect()),
                ("bundle", 3, vec![20, 21, 22]),
            ]
        );
        // A size that fits two jobs a bundle; a last one alone is a plain job.
        let one = serde_json::to_string(&jobs[0]).unwrap().len() + 1;
        let bodies = email_queue_bodies(&jobs[..5], 3, 2 * one + 1);
        assert_eq!(
            shape(&bodies),
            [
                ("bundle", 2, vec![0, 1]),
                ("bundle", 2, vec![2, 3]),
                ("one", 1, vec![4]),
            ]
        );
    }

    #[test]
    fn queue_bodies_round_trip_and_a_stranger_is_refused() {
        let jobs: Vec<DeliveryJob> = (0..3)
            .map(|i| mail_job("alice", "a@example.org", &format!("m{i}")))
            .collect();
        for (body, _) in email_queue_bodies(&jobs, 3, 200_000)
            .into_iter()
            .chain(email_queue_bodies(&jobs[..1], 3, 200_000))
        {
            let parsed = EmailQueueBody::parse(&body.to_json()).unwrap();
            assert_eq!(parsed.id(), body.id());
            assert_eq!(parsed, body);
        }
        assert!(EmailQueueBody::parse(r#"{"jobs": 3}"#).is_err());
        assert!(EmailQueueBody::parse(r#"{"job_id": "x"}"#).is_err());
        assert!(EmailQueueBody::parse("not json").is_err());
    }
}
