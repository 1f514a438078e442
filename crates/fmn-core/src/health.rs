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
    /// A Fedora alias bounced for good: the destination now sends to the account's own address
    /// ([`fedora_alias_fallback`]).
    Readdressed { from: String, to: String },
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

/// The domain of the addresses Fedora's account system hands out to every account: mail to
/// `name@fedoraproject.org` is forwarded to the account's own address.
pub const FEDORA_ALIAS_DOMAIN: &str = "fedoraproject.org";

/// Where a Fedora alias that bounced for good should send instead: the account's first FAS
/// address that is not itself an alias (old FMN replaced a bouncing `@fedoraproject.org`
/// address with the FAS one; the forward breaks when an account's own address changes).
/// `None` for any other address, or when FAS knows no other address.
pub fn fedora_alias_fallback(address: &str, fas_emails: &[String]) -> Option<String> {
    let is_alias = |a: &str| {
        a.rsplit_once('@')
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(FEDORA_ALIAS_DOMAIN))
    };
    if !is_alias(address) {
        return None;
    }
    fas_emails
        .iter()
        .map(|e| e.trim())
        .find(|e| !e.is_empty() && !is_alias(e) && !e.eq_ignore_ascii_case(address))
        .map(str::to_string)
}

/// Takes `outcome` into account for `user`'s destination `destination_id`: a hard bounce of a
/// Fedora alias moves the destination to the account's FAS address (`fas_emails`), confirmed
/// (FAS verified it) and with a clean health, unless the user already has that address as
/// another destination; anything else goes in the destination's health. `recipients`: the
/// addresses the mail went to, when the report says; a report about an address the destination
/// no longer has (mail sent before it moved) changes nothing.
pub fn record_outcome(
    prefs: &mut crate::prefs::UserPrefs,
    destination_id: &str,
    outcome: &Outcome,
    recipients: Option<&[String]>,
    at: i64,
    policy: &HealthPolicy,
    fas_emails: &[String],
) -> Change {
    use crate::prefs::DestinationKind;
    let Some(index) = prefs
        .destinations
        .iter()
        .position(|d| d.id == destination_id)
    else {
        return Change::None;
    };
    let address = prefs.destinations[index].address.clone();
    if let Some(recipients) = recipients {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
            return Change::None;
        }
    }
    let fallback = match outcome {
        Outcome::HardBounce(_) if prefs.destinations[index].kind == DestinationKind::Email => {
            fedora_alias_fallback(&address, fas_emails).filter(|to| {
                !prefs
                    .destinations
                    .iter()
                    .any(|d| d.kind == DestinationKind::Email && d.address.eq_ignore_ascii_case(to))
            })
        }
        _ => None,
    };
    let destination = &mut prefs.destinations[index];
    match (fallback, outcome) {
        (Some(to), Outcome::HardBounce(reason)) if !destination.health.is_stopped() => {
            destination.address = to.clone();
            destination.confirmed = true;
            destination.health = DeliveryHealth {
                last_problem: Some(Problem {
                    reason: format!(
                        "{address} bounced ({reason}); mail now goes to your FAS address {to}"
                    ),
                    at,
                }),
                ..DeliveryHealth::default()
            };
            Change::Readdressed { from: address, to }
        }
        _ => destination.health.record(outcome, at, policy),
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

    fn emails(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// `outcome` for destination `email-1`, at time 1, the default policy.
    fn on(
        prefs: &mut crate::prefs::UserPrefs,
        outcome: &Outcome,
        recipients: Option<&[String]>,
        fas_emails: &[String],
    ) -> Change {
        record_outcome(
            prefs,
            "email-1",
            outcome,
            recipients,
            1,
            &HealthPolicy::default(),
            fas_emails,
        )
    }

    #[test]
    fn only_a_fedora_alias_falls_back_and_only_to_a_real_address() {
        let fas = emails(&[
            "alice@fedoraproject.org",
            " ",
            "alice@example.com",
            "a@b.org",
        ]);
        assert_eq!(
            fedora_alias_fallback("alice@FedoraProject.org", &fas).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(fedora_alias_fallback("alice@example.org", &fas), None);
        assert_eq!(
            fedora_alias_fallback("alice@lists.fedoraproject.org", &fas),
            None,
            "a list, not an account alias"
        );
        assert_eq!(
            fedora_alias_fallback(
                "alice@fedoraproject.org",
                &emails(&["alice@fedoraproject.org"])
            ),
            None
        );
        assert_eq!(fedora_alias_fallback("alice@fedoraproject.org", &[]), None);
    }

    #[test]
    fn a_bouncing_alias_moves_to_the_fas_address_and_late_reports_are_ignored() {
        use crate::prefs::{Destination, UserPrefs};
        let mut prefs = UserPrefs::new("alice");
        prefs
            .destinations
            .push(Destination::email("email-1", "alice@fedoraproject.org").confirmed(true));
        let fas = emails(&["alice@example.com"]);
        let bounce = Outcome::HardBounce("550 5.1.1 unknown".into());
        let sent_to = emails(&["alice@fedoraproject.org"]);
        let change = on(&mut prefs, &bounce, Some(&sent_to), &fas);
        assert_eq!(
            change,
            Change::Readdressed {
                from: "alice@fedoraproject.org".into(),
                to: "alice@example.com".into()
            }
        );
        let d = &prefs.destinations[0];
        assert_eq!(d.address, "alice@example.com");
        assert!(d.confirmed && d.is_active() && !d.health.is_stopped());
        assert!(d
            .health
            .last_problem
            .as_ref()
            .unwrap()
            .reason
            .contains("550 5.1.1"));
        // A second bounce of mail sent to the alias before the move changes nothing.
        let again = on(&mut prefs, &bounce, Some(&sent_to), &fas);
        assert_eq!(again, Change::None);
        // A bounce of the FAS address itself stops the destination as usual.
        let stop = on(&mut prefs, &bounce, Some(&fas), &fas);
        assert!(matches!(stop, Change::Stopped(_)), "{stop:?}");
    }

    #[test]
    fn an_alias_stops_when_fas_has_nothing_else_or_the_address_is_there_already() {
        use crate::prefs::{Destination, UserPrefs};
        let bounce = Outcome::HardBounce("550".into());
        let mut prefs = UserPrefs::new("alice");
        prefs
            .destinations
            .push(Destination::email("email-1", "alice@fedoraproject.org").confirmed(true));
        let mut unknown = prefs.clone();
        let change = on(&mut unknown, &bounce, None, &[]);
        assert!(matches!(change, Change::Stopped(_)), "{change:?}");
        prefs
            .destinations
            .push(Destination::email("email-2", "Alice@Example.com").confirmed(true));
        let change = on(&mut prefs, &bounce, None, &emails(&["alice@example.com"]));
        assert!(
            matches!(change, Change::Stopped(_)),
            "already a destination: {change:?}"
        );
        // Soft bounces and complaints of an alias are the alias's own.
        let mut soft = UserPrefs::new("bob");
        soft.destinations
            .push(Destination::email("email-1", "bob@fedoraproject.org").confirmed(true));
        let change = on(
            &mut soft,
            &Outcome::Complaint("abuse".into()),
            None,
            &emails(&["bob@example.com"]),
        );
        assert!(matches!(change, Change::Stopped(_)));
    }

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
