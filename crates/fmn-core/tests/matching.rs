//! Matching on real corpus messages: each rule kind, the default filters, explain, and the
//! property that the indexed matcher and the naive one always agree.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use fmn_core::defaults::default_filters;
use fmn_core::matching::{explain, match_naive, Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::{Metadata, Registry, Severity};
use fmn_core::ownership::{parse_group_members, parse_owner_alias, Ownership};
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::{Artifact, ArtifactKind, Rule, RuleKind};
use proptest::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");

struct Corpus {
    messages: Vec<(String, Envelope, Metadata)>,
    ownership: Arc<Ownership>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let registry = Registry::default();
        let text = std::fs::read_to_string(format!("{DATA}/fedmsg-examples.jsonl")).unwrap();
        let messages = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let id = v["id"].as_str().unwrap().to_string();
                let env = Envelope::from_record_value(v).unwrap();
                let meta = registry.extract(&env);
                (id, env, meta)
            })
            .collect();
        let alias = parse_owner_alias(
            &std::fs::read_to_string(format!("{DATA}/ownership/pagure_owner_alias.json")).unwrap(),
        )
        .unwrap();
        let groups = parse_group_members(
            &std::fs::read_to_string(format!("{DATA}/ownership/groups.json")).unwrap(),
        )
        .unwrap();
        let mut ownership = Ownership::new();
        for (artifact, owners) in alias.artifacts {
            ownership.set_owners(artifact, owners);
        }
        for (group, members) in groups {
            ownership.set_members(group, members);
        }
        Corpus {
            messages,
            ownership: Arc::new(ownership),
        }
    })
}

fn message(id: &str) -> &'static (String, Envelope, Metadata) {
    corpus()
        .messages
        .iter()
        .find(|(i, _, _)| i == id)
        .unwrap_or_else(|| panic!("no corpus message {id}"))
}

fn email(id: &str, address: &str, confirmed: bool) -> Destination {
    Destination::email(id, address).confirmed(confirmed)
}

fn user(name: &str, rules: Vec<Rule>) -> UserPrefs {
    let mut p = UserPrefs::new(name);
    p.destinations
        .push(email("email-1", &format!("{name}@example.org"), true));
    p.filters.push(Filter::new(
        "filter-1".into(),
        "test".into(),
        vec!["email-1".into()],
        rules,
    ));
    p
}

/// Whether `prefs` gets message `id`, asserting both matchers agree.
fn gets(prefs: &UserPrefs, id: &str) -> bool {
    let c = corpus();
    let (_, env, meta) = message(id);
    let facts = MessageFacts::new(env, meta, &c.ownership);
    let naive = match_naive(std::slice::from_ref(prefs), &facts, &c.ownership);
    let (matcher, skipped) = Matcher::build([prefs.clone()], c.ownership.clone());
    assert!(skipped.is_empty());
    let indexed = matcher.matches(&facts);
    assert_eq!(naive, indexed, "matchers disagree on {id}");
    !naive.is_empty()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

const BODHI_REQUEST: &str = "bodhi.TestBodhiRequestMultiplePackagesPerUpdate"; // lmacken, hadess; control-center, gnome-settings-daemon
const LOOKASIDE: &str = "__init__.TestLookaside"; // jnovy; texlive; app git
const ANITYA: &str = "anitya.TestNewUpstreamVersion"; // anitya; 2ping

#[test]
fn user_rules() {
    let r = |users| vec![Rule::new(RuleKind::User { users })];
    assert!(gets(&user("x", r(s(&["hadess"]))), BODHI_REQUEST));
    assert!(gets(
        &user("x", r(s(&["nobody", "lmacken"]))),
        BODHI_REQUEST
    ));
    assert!(!gets(&user("x", r(s(&["ralph"]))), BODHI_REQUEST));
    let not = |users| vec![Rule::new(RuleKind::NotUser { users })];
    assert!(!gets(&user("x", not(s(&["hadess"]))), BODHI_REQUEST));
    assert!(gets(&user("x", not(s(&["ralph"]))), BODHI_REQUEST));
}

#[test]
fn package_rules() {
    let p = |packages| vec![Rule::new(RuleKind::Package { packages })];
    assert!(gets(&user("x", p(s(&["control-center"]))), BODHI_REQUEST));
    assert!(!gets(&user("x", p(s(&["control"]))), BODHI_REQUEST));
    let re = |pattern: &str| {
        vec![Rule::new(RuleKind::PackageRegex {
            pattern: pattern.into(),
        })]
    };
    assert!(gets(&user("x", re("^gnome-")), BODHI_REQUEST));
    assert!(!gets(&user("x", re("^kde-")), BODHI_REQUEST));
    assert!(gets(&user("x", re("^tex")), LOOKASIDE));
}

#[test]
fn ownership_rules() {
    // gnome-settings-daemon: hadess and @gnome-sig; kalev is in gnome-sig.
    let mine = vec![Rule::new(RuleKind::UserPackages {
        user: String::new(),
    })];
    assert!(gets(&user("hadess", mine.clone()), BODHI_REQUEST));
    assert!(
        gets(&user("kalev", mine.clone()), BODHI_REQUEST),
        "through gnome-sig"
    );
    assert!(!gets(&user("jnovy", mine.clone()), BODHI_REQUEST));
    assert!(gets(&user("jnovy", mine), LOOKASIDE));
    let theirs = vec![Rule::new(RuleKind::UserPackages {
        user: "hadess".into(),
    })];
    assert!(gets(&user("someone", theirs), BODHI_REQUEST));

    // artifacts-owned is direct ownership only.
    let owned = |users| vec![Rule::new(RuleKind::ArtifactsOwned { users })];
    assert!(gets(&user("hadess", owned(vec![])), BODHI_REQUEST));
    assert!(!gets(&user("kalev", owned(vec![])), BODHI_REQUEST));
    assert!(gets(&user("x", owned(s(&["hadess"]))), BODHI_REQUEST));
    let group = |groups| vec![Rule::new(RuleKind::ArtifactsGroupOwned { groups })];
    assert!(gets(&user("x", group(s(&["gnome-sig"]))), BODHI_REQUEST));
    assert!(!gets(&user("x", group(s(&["python-sig"]))), BODHI_REQUEST));
    let followed = |name: &str| {
        vec![Rule::new(RuleKind::ArtifactsFollowed {
            artifacts: vec![Artifact::new(ArtifactKind::Rpms, name)],
        })]
    };
    assert!(gets(&user("x", followed("2ping")), ANITYA));
    assert!(!gets(&user("x", followed("3ping")), ANITYA));
}

#[test]
fn group_members_rule() {
    let g = |group: &str| {
        vec![Rule::new(RuleKind::GroupMembers {
            group: group.into(),
        })]
    };
    assert!(gets(&user("x", g("fedmsg-sig")), BODHI_REQUEST), "lmacken");
    assert!(!gets(&user("x", g("kernel-maint")), BODHI_REQUEST));
}

#[test]
fn regex_anywhere() {
    let re = |pattern: &str| {
        vec![Rule::new(RuleKind::Regex {
            pattern: pattern.into(),
        })]
    };
    assert!(gets(&user("x", re("pst-diffraction")), LOOKASIDE));
    assert!(!gets(&user("x", re("no-such-file-anywhere")), LOOKASIDE));
}

#[test]
fn tracking_rules_about_me() {
    let related = vec![Rule::new(RuleKind::RelatedEvents)];
    assert!(gets(&user("hadess", related.clone()), BODHI_REQUEST));
    assert!(!gets(&user("ralph", related), BODHI_REQUEST));
    let followed = |users| vec![Rule::new(RuleKind::UsersFollowed { users })];
    assert!(gets(&user("x", followed(s(&["lmacken"]))), BODHI_REQUEST));
    assert!(
        !gets(&user("x", followed(s(&["hadess"]))), BODHI_REQUEST),
        "hadess is concerned but not the agent"
    );
}

#[test]
fn narrowing_rules() {
    let both = |rule: RuleKind| vec![Rule::new(RuleKind::RelatedEvents), Rule::new(rule)];
    let apps = |a: &[&str]| RuleKind::Applications { applications: s(a) };
    assert!(gets(&user("hadess", both(apps(&["Bodhi"]))), BODHI_REQUEST));
    assert!(!gets(&user("hadess", both(apps(&["koji"]))), BODHI_REQUEST));
    let sev = |v: Vec<Severity>| RuleKind::Severities { severities: v };
    assert!(gets(
        &user("hadess", both(sev(vec![Severity::Info]))),
        BODHI_REQUEST
    ));
    assert!(!gets(
        &user("hadess", both(sev(vec![Severity::Error]))),
        BODHI_REQUEST
    ));
    let topic = |g: &str| RuleKind::Topic { glob: g.into() };
    assert!(gets(
        &user("hadess", both(topic("*.bodhi.update.request.*"))),
        BODHI_REQUEST
    ));
    assert!(!gets(
        &user("hadess", both(topic("*.bodhi.update.comment"))),
        BODHI_REQUEST
    ));
    assert!(gets(
        &user("hadess", both(RuleKind::NotMyActions)),
        BODHI_REQUEST
    ));
    assert!(!gets(
        &user("lmacken", both(RuleKind::NotMyActions)),
        BODHI_REQUEST
    ));
    // A topic-only filter, indexed by its literal topic.
    let exact = vec![Rule::new(topic(&message(LOOKASIDE).2.title).clone())];
    assert!(
        !gets(&user("x", exact), LOOKASIDE),
        "the title is not the topic"
    );
    let exact = vec![Rule::new(topic("org.fedoraproject.prod.git.lookaside.new"))];
    assert!(gets(&user("x", exact), LOOKASIDE));
}

#[test]
fn negation_inverts_a_rule() {
    let rules = vec![
        Rule::new(RuleKind::RelatedEvents),
        Rule::not(RuleKind::Applications {
            applications: s(&["bodhi"]),
        }),
    ];
    assert!(!gets(&user("hadess", rules), BODHI_REQUEST));
    let only_negated = vec![Rule::not(RuleKind::User {
        users: s(&["ralph"]),
    })];
    assert!(
        gets(&user("x", only_negated), BODHI_REQUEST),
        "a filter of negated rules is scanned"
    );
}

#[test]
fn what_does_not_receive() {
    let related = vec![Rule::new(RuleKind::RelatedEvents)];
    let mut disabled = user("hadess", related.clone());
    disabled.enabled = false;
    assert!(!gets(&disabled, BODHI_REQUEST));
    let mut unconfirmed = user("hadess", related.clone());
    unconfirmed.destinations[0].confirmed = false;
    assert!(!gets(&unconfirmed, BODHI_REQUEST));
    let mut off = user("hadess", related);
    off.filters[0].enabled = false;
    assert!(!gets(&off, BODHI_REQUEST));
    assert!(!gets(&user("hadess", vec![]), BODHI_REQUEST), "no rules");
}

#[test]
fn first_filter_wins_per_destination() {
    let c = corpus();
    let mut p = user("hadess", vec![Rule::new(RuleKind::RelatedEvents)]);
    p.destinations
        .push(email("email-2", "other@example.org", true));
    p.filters.push(Filter {
        id: "filter-2".into(),
        name: "second".into(),
        enabled: true,
        oneshot: true,
        destinations: vec!["email-1".into(), "email-2".into()],
        rules: vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })],
        max_per_hour: None,
        urgent: false,
    });
    let (_, env, meta) = message(BODHI_REQUEST);
    let facts = MessageFacts::new(env, meta, &c.ownership);
    let (matcher, _) = Matcher::build([p.clone()], c.ownership.clone());
    let got = matcher.matches(&facts);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].destination.id.as_str(), &*got[0].filter_id),
        ("email-1", "filter-1")
    );
    assert_eq!(
        (got[1].destination.id.as_str(), &*got[1].filter_id),
        ("email-2", "filter-2")
    );
    assert!(got[1].oneshot);
    assert_eq!(got, match_naive(&[p], &facts, &c.ownership));
}

/// The API allows 10 destinations, but the index takes any number: those past the 64th are
/// kept apart from the bit set the others use, and still receive, once each.
#[test]
fn destinations_past_the_64th_still_receive() {
    let c = corpus();
    let mut p = user("hadess", vec![Rule::new(RuleKind::RelatedEvents)]);
    for i in 2..=70 {
        p.destinations.push(email(
            &format!("email-{i:02}"),
            &format!("{i}@example.org"),
            true,
        ));
    }
    // The first filter feeds one high destination and one low; the second all of them.
    p.filters[0].destinations = vec!["email-69".into(), "email-03".into()];
    let mut all = p.filters[0].clone();
    all.id = "filter-2".into();
    all.destinations = p.destinations.iter().map(|d| d.id.clone()).collect();
    p.filters.push(all);
    let (_, env, meta) = message(BODHI_REQUEST);
    let facts = MessageFacts::new(env, meta, &c.ownership);
    let (mut matcher, _) = Matcher::build([p.clone()], c.ownership.clone());
    let got = matcher.matches(&facts);
    assert_eq!(got.len(), 70, "one match per destination");
    let by = |id: &str| got.iter().find(|m| m.destination.id == id).unwrap();
    assert_eq!(&*by("email-69").filter_id, "filter-1");
    assert_eq!(&*by("email-70").filter_id, "filter-2");
    assert_eq!(
        got,
        match_naive(std::slice::from_ref(&p), &facts, &c.ownership)
    );
    // Replaced by preferences with fewer, nothing of the old ones is left behind.
    p.destinations.truncate(1);
    p.filters.truncate(1);
    p.filters[0].destinations = vec!["email-1".into()];
    matcher.upsert(&p);
    let got = matcher.matches(&facts);
    assert_eq!(got.len(), 1);
    assert_eq!(got, match_naive(&[p], &facts, &c.ownership));
}

#[test]
fn default_filters_skip_own_actions_and_noise() {
    let c = corpus();
    let make = |name: &str| {
        let mut p = user(name, vec![]);
        p.filters = default_filters(&p, &["email-1".to_string()]);
        p.validate().unwrap();
        p
    };
    assert!(gets(&make("hadess"), BODHI_REQUEST), "about me");
    assert!(gets(&make("kalev"), BODHI_REQUEST), "my group's package");
    assert!(!gets(&make("lmacken"), BODHI_REQUEST), "my own action");
    assert!(!gets(&make("ralph"), BODHI_REQUEST));
    // anitya is excluded noise even on my packages (2ping is fatka's).
    assert!(!gets(&make("fatka"), ANITYA));
    // Every corpus message: defaults never notify the agent about their own action.
    let users: Vec<UserPrefs> = ["ralph", "pingou", "lmacken", "hadess", "jforbes", "mjw"]
        .into_iter()
        .map(make)
        .collect();
    let (matcher, _) = Matcher::build(users.clone(), c.ownership.clone());
    let mut notified = 0;
    for (_, env, meta) in &c.messages {
        let facts = MessageFacts::new(env, meta, &c.ownership);
        let got = matcher.matches(&facts);
        for m in &got {
            assert_ne!(Some(&*m.user), meta.agent.as_deref());
        }
        notified += got.len();
        assert_eq!(got, match_naive(&users, &facts, &c.ownership));
    }
    assert!(
        notified > 20,
        "defaults should notify about something: {notified}"
    );
}

#[test]
fn explain_says_which_rule_failed() {
    let c = corpus();
    let mut p = user(
        "hadess",
        vec![
            Rule::new(RuleKind::RelatedEvents),
            Rule::new(RuleKind::Applications {
                applications: s(&["koji"]),
            }),
        ],
    );
    p.destinations
        .push(email("email-2", "x@example.org", false));
    p.filters.push(Filter::new(
        "filter-2".into(),
        "pending".into(),
        vec!["email-2".into()],
        vec![Rule::new(RuleKind::RelatedEvents)],
    ));
    let (_, env, meta) = message(BODHI_REQUEST);
    let facts = MessageFacts::new(env, meta, &c.ownership);
    let e = explain(&p, &facts, &c.ownership);
    assert!(!e.notified);
    assert!(!e.filters[0].matched);
    assert!(e.filters[0].rules[0].held);
    assert!(!e.filters[0].rules[1].held);
    assert!(e.filters[0].rules[1].why.contains("bodhi"), "{e:#?}");
    assert!(e.filters[1].matched);
    assert_eq!(
        e.filters[1].destinations[0].outcome,
        "not sent: the destination is not confirmed"
    );
    assert!(e.summary.contains("none of its destinations is confirmed"));
}

// --- The indexed matcher agrees with the naive one -------------------------------------------

/// Values drawn from the corpus, for random preferences that actually hit messages.
struct Pools {
    users: Vec<String>,
    packages: Vec<String>,
    apps: Vec<String>,
    topics: Vec<String>,
}

fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(make_pools)
}

fn make_pools() -> Pools {
    let c = corpus();
    let mut users = BTreeSet::new();
    let mut packages = BTreeSet::new();
    let mut apps = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for (_, env, meta) in &c.messages {
        users.extend(meta.usernames.iter().cloned());
        packages.extend(meta.packages.iter().cloned());
        apps.insert(meta.app.clone());
        topics.insert(env.topic().as_str().to_string());
    }
    for extra in ["kalev", "churchyard", "codonell", "nobody"] {
        users.insert(extra.to_string());
    }
    Pools {
        users: users.into_iter().collect(),
        packages: packages.into_iter().collect(),
        apps: apps.into_iter().collect(),
        topics: topics.into_iter().collect(),
    }
}

fn pick(pool: &'static [String]) -> impl Strategy<Value = String> {
    proptest::sample::select(pool)
}

fn names(pool: &'static [String]) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(pick(pool), 1..3)
}

fn rule_kind() -> impl Strategy<Value = RuleKind> {
    let Pools {
        users,
        packages,
        apps,
        topics,
    } = pools();
    let groups: &'static [String] = Box::leak(
        s(&[
            "fedmsg-sig",
            "gnome-sig",
            "python-sig",
            "kernel-maint",
            "packager",
        ])
        .into_boxed_slice(),
    );
    let globs: &'static [String] = Box::leak(
        s(&[
            "*.bodhi.*",
            "*.buildsys.*",
            "org.fedoraproject.prod.*",
            "*.update.*",
        ])
        .into_boxed_slice(),
    );
    let regexes: &'static [String] = Box::leak(
        s(&[
            "fedmsg",
            "^python-",
            "kernel",
            "[0-9]\\.fc2",
            // Gated by the prefilter in other ways: case-blind, alternation, none at all.
            "(?i)BODHI",
            "koji|copr",
            "\\w+",
        ])
        .into_boxed_slice(),
    );
    prop_oneof![
        names(users).prop_map(|users| RuleKind::User { users }),
        names(users).prop_map(|users| RuleKind::NotUser { users }),
        names(packages).prop_map(|packages| RuleKind::Package { packages }),
        pick(regexes).prop_map(|pattern| RuleKind::PackageRegex { pattern }),
        prop_oneof![Just(String::new()), pick(users)]
            .prop_map(|user| RuleKind::UserPackages { user }),
        pick(regexes).prop_map(|pattern| RuleKind::Regex { pattern }),
        pick(groups).prop_map(|group| RuleKind::GroupMembers { group }),
        prop_oneof![Just(vec![]), names(users)]
            .prop_map(|users| RuleKind::ArtifactsOwned { users }),
        names(groups).prop_map(|groups| RuleKind::ArtifactsGroupOwned { groups }),
        names(packages).prop_map(|p| RuleKind::ArtifactsFollowed {
            artifacts: p
                .into_iter()
                .map(|n| Artifact::new(ArtifactKind::Rpms, n))
                .collect()
        }),
        Just(RuleKind::RelatedEvents),
        names(users).prop_map(|users| RuleKind::UsersFollowed { users }),
        names(apps).prop_map(|applications| RuleKind::Applications { applications }),
        proptest::collection::vec(
            prop_oneof![
                Just(Severity::Debug),
                Just(Severity::Info),
                Just(Severity::Warning),
                Just(Severity::Error)
            ],
            1..3
        )
        .prop_map(|severities| RuleKind::Severities { severities }),
        prop_oneof![pick(globs), pick(topics)].prop_map(|glob| RuleKind::Topic { glob }),
        Just(RuleKind::NotMyActions),
        pick(catalogue_entries()).prop_map(|entry| {
            let values = match entry.as_str() {
                "koji_instance" => vec!["primary".to_string()],
                "koschei_group" => vec!["rust-sig".to_string()],
                "anitya_by_upstream_project" => vec!["2ping".to_string()],
                "taskotron_task_outcome" => vec!["PASSED".to_string()],
                "pagure_issues_of_projects"
                | "pagure_pull_requests_of_projects"
                | "pagure_commits_to_projects" => vec!["fedora-infrastructure".to_string()],
                "meetbot_irc_channel" => vec!["#fedora-meeting".to_string()],
                "meetbot_matrix_room" => vec!["#meeting:fedoraproject.org".to_string()],
                // An entry that takes a value and is not listed above: any value compiles.
                _ if takes_value(&entry) => vec!["fedora".to_string()],
                _ => vec![],
            };
            RuleKind::Catalogue { entry, values }
        }),
    ]
}

/// Whether a catalogue entry needs the user's values (a rule without them does not compile).
fn takes_value(id: &str) -> bool {
    fmn_core::rules::service_catalogue()
        .entries()
        .any(|(_, e)| e.id == id && e.param.is_some())
}

/// Every service catalogue entry id.
fn catalogue_entries() -> &'static [String] {
    static IDS: OnceLock<Vec<String>> = OnceLock::new();
    IDS.get_or_init(|| {
        fmn_core::rules::service_catalogue()
            .entries()
            .map(|(_, e)| e.id.clone())
            .collect()
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    (rule_kind(), proptest::bool::weighted(0.25)).prop_map(|(kind, negated)| Rule { kind, negated })
}

fn filter(n: usize) -> impl Strategy<Value = Filter> {
    (
        proptest::collection::vec(rule(), 0..4),
        proptest::bool::weighted(0.9),
        any::<bool>(),
        proptest::collection::vec(0usize..3, 1..3),
    )
        .prop_map(move |(rules, enabled, oneshot, dests)| Filter {
            id: format!("filter-{n}"),
            name: format!("filter {n}"),
            enabled,
            oneshot,
            destinations: dests.into_iter().map(|d| format!("email-{d}")).collect(),
            rules,
            max_per_hour: None,
            urgent: false,
        })
}

fn user_prefs() -> impl Strategy<Value = UserPrefs> {
    let users: &'static [String] = &pools().users;
    (
        pick(users),
        proptest::bool::weighted(0.9),
        proptest::collection::vec(proptest::bool::weighted(0.8), 3),
        (filter(0), filter(1), filter(2)),
        0usize..=3,
    )
        .prop_map(|(name, enabled, confirmed, (f0, f1, f2), nfilters)| {
            let mut p = UserPrefs::new(name.clone());
            p.enabled = enabled;
            for (i, c) in confirmed.into_iter().enumerate() {
                p.destinations.push(email(
                    &format!("email-{i}"),
                    &format!("{name}+{i}@example.org"),
                    c,
                ));
            }
            p.filters = [f0, f1, f2].into_iter().take(nfilters).collect();
            p
        })
}

fn dedupe_by_name(users: Vec<UserPrefs>) -> Vec<UserPrefs> {
    let mut seen = BTreeSet::new();
    users
        .into_iter()
        .filter(|u| seen.insert(u.name.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn indexed_matcher_equals_naive_on_every_corpus_message(
        users in proptest::collection::vec(user_prefs(), 1..40)
    ) {
        let c = corpus();
        let users = dedupe_by_name(users);
        let (matcher, skipped) = Matcher::build(users.clone(), c.ownership.clone());
        prop_assert!(skipped.is_empty());
        for (id, env, meta) in &c.messages {
            let facts = MessageFacts::new(env, meta, &c.ownership);
            let naive = match_naive(&users, &facts, &c.ownership);
            let indexed = matcher.matches(&facts);
            prop_assert_eq!(naive, indexed, "message {}", id);
        }
    }

    #[test]
    fn incremental_updates_equal_a_fresh_build(
        first in proptest::collection::vec(user_prefs(), 1..20),
        second in proptest::collection::vec(user_prefs(), 1..20),
        removed in proptest::collection::vec(any::<proptest::sample::Index>(), 0..5),
    ) {
        let c = corpus();
        let (mut matcher, _) = Matcher::build(dedupe_by_name(first.clone()), c.ownership.clone());
        // Replace some users, add others, remove a few.
        let mut current: std::collections::BTreeMap<String, UserPrefs> =
            dedupe_by_name(first).into_iter().map(|u| (u.name.clone(), u)).collect();
        for u in dedupe_by_name(second) {
            matcher.upsert(&u);
            current.insert(u.name.clone(), u);
        }
        let names: Vec<String> = current.keys().cloned().collect();
        for idx in removed {
            let name = idx.get(&names);
            matcher.remove(name);
            current.remove(name);
        }
        let users: Vec<UserPrefs> = current.into_values().collect();
        let (fresh, _) = Matcher::build(users.clone(), c.ownership.clone());
        let a = matcher.stats();
        let b = fresh.stats();
        prop_assert_eq!(
            (a.users, a.filters, a.scanned_filters, a.postings, a.distinct_rule_sets, a.distinct_rules),
            (b.users, b.filters, b.scanned_filters, b.postings, b.distinct_rule_sets, b.distinct_rules)
        );
        for (id, env, meta) in &c.messages {
            let facts = MessageFacts::new(env, meta, &c.ownership);
            prop_assert_eq!(matcher.matches(&facts), match_naive(&users, &facts, &c.ownership), "message {}", id);
        }
    }
}

#[test]
fn changing_ownership_refiles_filters() {
    let c = corpus();
    let p = user(
        "newcomer",
        vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })],
    );
    let (_, env, meta) = message(BODHI_REQUEST);
    let (mut matcher, _) = Matcher::build([p.clone()], c.ownership.clone());
    let facts = MessageFacts::new(env, meta, &c.ownership);
    assert!(matcher.matches(&facts).is_empty());
    let mut ownership = (*c.ownership).clone();
    ownership.set_members("gnome-sig", s(&["hadess", "newcomer"]));
    let ownership = Arc::new(ownership);
    matcher.set_ownership(ownership.clone());
    let facts = MessageFacts::new(env, meta, &ownership);
    assert_eq!(matcher.matches(&facts).len(), 1);
    assert_eq!(
        matcher.matches(&facts),
        match_naive(&[p], &facts, &ownership)
    );
}

/// Words of the corpus (its packages and users), for regex patterns as people write them.
fn corpus_words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words = BTreeSet::new();
        for (_, _, meta) in &corpus().messages {
            words.extend(meta.packages.iter().cloned());
            words.extend(meta.usernames.iter().cloned());
        }
        words.into_iter().collect()
    })
}

/// A body regex made of corpus words in the shapes people write (whole word, case-blind,
/// quoted, prefix, alternation, classes, wildcards), some with no usable literal.
fn corpus_pattern() -> impl Strategy<Value = String> {
    let words = corpus_words();
    let word = proptest::sample::select(words);
    (word.clone(), word, 0..12usize, 1..5usize).prop_map(|(w, v, shape, cut)| {
        let head = regex::escape(&w.chars().take(cut).collect::<String>());
        let (w, v) = (regex::escape(&w), regex::escape(&v));
        match shape {
            0 => format!(r"\b{w}\b"),
            1 => format!("(?i){}", w.to_uppercase()),
            2 => format!(r#""{w}""#),
            3 => format!("{w}|{v}"),
            4 => format!(r"{head}\w*-[0-9]"),
            5 => format!("(?i){w}.*{v}"),
            6 => format!(r"^\{{.*{w}"),
            7 => format!(r"[a-z]+{w}"),
            8 => format!("({w})?x"),
            9 => format!(r"\d+\.fc{cut}"),
            10 => head,
            _ => format!("(?:{w}|{v})+"),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The literal prefilter never drops a true match: every match of a pattern contains one of
    /// its required literals, and a matcher of regex-only filters (the ones it gates) agrees
    /// with the naive matcher, which runs every regex, on every corpus message.
    #[test]
    fn the_regex_prefilter_never_drops_a_match(
        patterns in proptest::collection::vec(corpus_pattern(), 1..12)
    ) {
        use fmn_core::matching::required_literals;
        let c = corpus();
        let compiled: Vec<(regex::Regex, Option<Vec<Vec<u8>>>)> = patterns
            .iter()
            .map(|p| (regex::Regex::new(p).unwrap(), required_literals(p)))
            .collect();
        let users: Vec<UserPrefs> = patterns
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                let mut p = UserPrefs::new(format!("regex{i}"));
                p.destinations =
                    vec![Destination::email("email-1", format!("r{i}@example.org")).confirmed(true)];
                p.filters = vec![Filter::new(
                    "filter-1".into(),
                    "regex".into(),
                    vec!["email-1".into()],
                    vec![Rule::new(RuleKind::Regex { pattern: pattern.clone() })],
                )];
                p
            })
            .collect();
        let (matcher, skipped) = Matcher::build(users.clone(), c.ownership.clone());
        prop_assert!(skipped.is_empty());
        for (id, env, meta) in &c.messages {
            let facts = MessageFacts::new(env, meta, &c.ownership);
            let haystack = facts.regex_haystack();
            for ((re, literals), pattern) in compiled.iter().zip(&patterns) {
                if let (Some(m), Some(literals)) = (re.find(haystack), literals) {
                    let matched = m.as_str().as_bytes();
                    prop_assert!(
                        literals.iter().any(|l| matched.starts_with(l)),
                        "/{}/ matched {:?} in {} without its literals {:?}",
                        pattern, m.as_str(), id, literals
                    );
                }
            }
            prop_assert_eq!(
                matcher.matches(&facts),
                match_naive(&users, &facts, &c.ownership),
                "message {}", id
            );
        }
    }
}
