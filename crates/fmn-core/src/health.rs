//! What delivery has shown about a destination: bounces, complaints, runs of failures. A hard
//! bounce or a complaint stops delivery at once (mailing an address that refuses mail, or a
//! person who reported it as spam, harms the sender's standing for every user); soft bounces
//! and failures stop it when they persist. A stopped destination receives nothing until its
//! user resumes it; the reason and time are kept for the page and the API.

use serde::{Deserialize, Serialize};

/// Why delivery to a destination was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The receiving server refused the address for good.
    HardBounce,
    /// The recipient reported a mail as spam.
    Complaint,
    /// Temporary refusals, too many in a row.
    SoftBounces,
    /// Deliveries given up (retry schedule spent) for too long.
    Failing,
}

/// A stop, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub cause: StopCause,
    /// In words, with what the server said.
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// The last problem seen (kept after a stop, and while problems have not yet stopped it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// A destination's delivery health (empty: nothing to report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryHealth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Soft bounces since the last delivery.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub soft_bounces: u32,
    /// Since when deliveries have been given up, with no delivery in between (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_problem: Option<Problem>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiving side took it.
    Delivered,
    HardBounce(String),
    SoftBounce(String),
    Complaint(String),
    /// Its retry schedule was spent without success.
    GaveUp(String),
}

/// When persisting problems stop a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Soft bounces in a row that stop it.
    pub soft_bounce_limit: u32,
    /// Seconds of given-up deliveries, with none delivered, that stop it.
    pub failing_limit_secs: i64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            soft_bounce_limit: 3,
            failing_limit_secs: 3 * 24 * 3600,
        }
    }
}

/// What an outcome changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to store.
    None,
    /// The health changed; delivery goes on.
    Updated,
    /// Delivery to the destination stops now.
    Stopped(Stopped),
}

impl DeliveryHealth {
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Takes `outcome`, seen at `at` (unix seconds), into account.
    pub fn record(&mut self, outcome: &Outcome, at: i64, policy: &HealthPolicy) -> Change {
        if self.stopped.is_some() {
            // Mail sent before the stop may still report; the stop stands until resumed.
            return Change::None;
        }
        let problem = |reason: &str| {
            Some(Problem {
                reason: reason.to_string(),
                at,
            })
        };
        match outcome {
            Outcome::Delivered => {
                if self.soft_bounces == 0 && self.failing_since.is_none() {
                    return Change::None;
                }
                self.soft_bounces = 0;
                self.failing_since = None;
                Change::Updated
            }
            Outcome::HardBounce(reason) => {
                self.last_problem = problem(reason);
                self.stop(
                    StopCause::HardBounce,
                    format!("the address bounced: {reason}"),
                    at,
                )
            }
            Outcome::Complaint(reason) => {
                self.last_problem = problem(reason);
                self.stop(
                    StopCause::Complaint,
                    format!("marked as spam: {reason}"),
                    at,
                )
            }
            Outcome::SoftBounce(reason) => {
                self.last_problem = problem(reason);
                self.soft_bounces += 1;
                if self.soft_bounces >= policy.soft_bounce_limit {
                    let n = self.soft_bounces;
                    self.stop(
                        StopCause::SoftBounces,
                        format!("{n} temporary bounces in a row, the last: {reason}"),
                        at,
                    )
                } else {
                    Change::Updated
                }
            }
            Outcome::GaveUp(reason) => {
                self.last_problem = problem(reason);
                let since = *self.failing_since.get_or_insert(at);
                if at - since >= policy.failing_limit_secs {
                    let days = (at - since) / 86_400;
                    self.stop(
                        StopCause::Failing,
                        format!("every delivery failed for {days} days, the last: {reason}"),
                        at,
                    )
                } else {
                    Change::Updated
                }
            }
        }
    }

    fn stop(&mut self, cause: StopCause, reason: String, at: i64) -> Change {
        let stopped = Stopped { cause, reason, at };
        self.stopped = Some(stopped.clone());
        Change::Stopped(stopped)
    }

    /// The user resumes delivery: the stop and the counts go, the last problem stays on view.
    pub fn resume(&mut self) {
        self.stopped = None;
        self.soft_bounces = 0;
        self.failing_since = None;
    }
}

/// The mail that tells a user a destination was stopped: a job for another of their active
/// e-mail destinations (none: `None`, the page and the API still say it). Sent at once, whatever
/// that destination's digest setting: it asks the user to act.
pub fn stop_notice(
    prefs: &crate::prefs::UserPrefs,
    stopped_destination: &crate::prefs::Destination,
    stopped: &Stopped,
) -> Option<crate::jobs::DeliveryJob> {
    use crate::prefs::DestinationKind;
    let to = prefs.destinations.iter().find(|d| {
        d.id != stopped_destination.id && d.kind == DestinationKind::Email && d.is_active()
    })?;
    let notification = crate::jobs::Notification {
        // One notice per stop.
        msg_id: format!("fmn-stop-{}-{}", stopped_destination.id, stopped.at),
        topic: "fmn.destination.stopped".into(),
        app: "fmn".into(),
        agent: None,
        title: format!(
            "Notifications to {} {} stopped",
            stopped_destination.kind.as_str(),
            stopped_destination.address
        ),
        subtitle: Some(format!(
            "Fedora Notifications stopped sending to {}: {}. Resume it on your preferences page once it is fixed.",
            stopped_destination.address, stopped.reason
        )),
        link: None,
        usernames: vec![prefs.name.clone()],
        packages: Vec::new(),
        usernames_total: None,
        packages_total: None,
        timestamp: Some(stopped.at as f64),
        severity: crate::meta::Severity::Warning,
        origin: Default::default(),
        long_text: None,
    };
    let mut to = to.clone();
    to.delivery = crate::prefs::Delivery::Immediate;
    Some(crate::jobs::DeliveryJob {
        job_id: crate::jobs::job_id(&notification.msg_id, &prefs.name, &to),
        user: prefs.name.clone(),
        filter_id: "fmn-delivery-status".into(),
        filter_name: "Delivery status".into(),
        reason: "a destination of yours was stopped".into(),
        reason_code: String::new(),
        destination: to,
        notification,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_told_to_another_active_email_destination_only() {
        use crate::prefs::{Destination, UserPrefs};
        let mut prefs = UserPrefs::new("alice");
        let bouncing = Destination::email("email-1", "alice@old.example").confirmed(true);
        prefs.destinations.push(bouncing.clone());
        prefs
            .destinations
            .push(Destination::irc("irc-2", "alice").confirmed(true));
        let stopped = Stopped {
            cause: StopCause::HardBounce,
            reason: "the address bounced: 550".into(),
            at: 42,
        };
        assert!(
            stop_notice(&prefs, &bouncing, &stopped).is_none(),
            "no other mail address"
        );
        prefs
            .destinations
            .push(Destination::email("email-3", "alice@new.example"));
        assert!(
            stop_notice(&prefs, &bouncing, &stopped).is_none(),
            "unconfirmed"
        );
        prefs.destinations[2].confirmed = true;
        let job = stop_notice(&prefs, &bouncing, &stopped).unwrap();
        assert_eq!(job.destination.address, "alice@new.example");
        assert!(job
            .notification
            .subtitle
            .unwrap()
            .contains("alice@old.example"));
        assert_eq!(job.notification.msg_id, "fmn-stop-email-1-42");
    }

    const P: HealthPolicy = HealthPolicy {
        soft_bounce_limit: 3,
        failing_limit_secs: 3 * 86_400,
    };

    #[test]
    fn a_hard_bounce_or_a_complaint_stops_at_once() {
        let mut h = DeliveryHealth::default();
        let c = h.record(
            &Outcome::HardBounce("550 5.1.1 user unknown".into()),
            100,
            &P,
        );
        assert_eq!(
            c,
            Change::Stopped(Stopped {
                cause: StopCause::HardBounce,
                reason: "the address bounced: 550 5.1.1 user unknown".into(),
                at: 100
            })
        );
        assert!(h.is_stopped());
        // Later events change nothing until the user resumes.
        assert_eq!(h.record(&Outcome::Delivered, 200, &P), Change::None);
        let mut h = DeliveryHealth::default();
        assert!(matches!(
            h.record(&Outcome::Complaint("abuse".into()), 1, &P),
            Change::Stopped(Stopped {
                cause: StopCause::Complaint,
                ..
            })
        ));
    }

    #[test]
    fn soft_bounces_stop_only_in_a_row() {
        let mut h = DeliveryHealth::default();
        let soft = Outcome::SoftBounce("mailbox full".into());
        assert_eq!(h.record(&soft, 1, &P), Change::Updated);
        assert_eq!(h.record(&soft, 2, &P), Change::Updated);
        assert_eq!(h.record(&Outcome::Delivered, 3, &P), Change::Updated);
        assert_eq!(h.soft_bounces, 0);
        assert_eq!(h.record(&soft, 4, &P), Change::Updated);
        assert_eq!(h.record(&soft, 5, &P), Change::Updated);
        let c = h.record(&soft, 6, &P);
        assert!(
            matches!(&c, Change::Stopped(s) if s.cause == StopCause::SoftBounces
                && s.reason == "3 temporary bounces in a row, the last: mailbox full"),
            "{c:?}"
        );
    }

    #[test]
    fn failures_stop_after_three_days_without_a_delivery() {
        let mut h = DeliveryHealth::default();
        let gave_up = Outcome::GaveUp("IRC server unreachable".into());
        assert_eq!(h.record(&gave_up, 1_000, &P), Change::Updated);
        assert_eq!(h.failing_since, Some(1_000));
        assert_eq!(h.record(&gave_up, 1_000 + 2 * 86_400, &P), Change::Updated);
        // A delivery in between starts the count again.
        assert_eq!(
            h.record(&Outcome::Delivered, 1_000 + 2 * 86_400 + 1, &P),
            Change::Updated
        );
        assert_eq!(h.record(&gave_up, 1_000 + 3 * 86_400, &P), Change::Updated);
        let c = h.record(&gave_up, 1_000 + 6 * 86_400, &P);
        assert!(
            matches!(&c, Change::Stopped(s) if s.cause == StopCause::Failing
                && s.reason.starts_with("every delivery failed for 3 days")),
            "{c:?}"
        );
    }

    #[test]
    fn a_delivery_on_a_clear_record_stores_nothing() {
        let mut h = DeliveryHealth::default();
        assert_eq!(h.record(&Outcome::Delivered, 1, &P), Change::None);
        assert!(h.is_clear());
    }

    #[test]
    fn resuming_clears_the_stop_and_keeps_the_last_problem_on_view() {
        let mut h = DeliveryHealth::default();
        h.record(&Outcome::HardBounce("550".into()), 1, &P);
        h.resume();
        assert!(!h.is_stopped());
        assert_eq!(
            h.last_problem.as_ref().map(|p| p.reason.as_str()),
            Some("550")
        );
        assert_eq!(h.record(&Outcome::Delivered, 2, &P), Change::None);
    }

    #[test]
    fn stored_json_is_compact_and_reads_back() {
        assert_eq!(
            serde_json::to_string(&DeliveryHealth::default()).unwrap(),
            "{}"
        );
        let mut h = DeliveryHealth::default();
        h.record(&Outcome::SoftBounce("full".into()), 7, &P);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"soft_bounces":1,"last_problem":{"reason":"full","at":7}}"#
        );
        assert_eq!(serde_json::from_str::<DeliveryHealth>(&json).unwrap(), h);
    }
}
