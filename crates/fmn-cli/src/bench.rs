//! `fmn bench`: synthetic benchmarks of the hot paths.
//!
//! `fmn bench match --users N` generates N users with a realistic mix of preferences, the
//! ownership of ~25,000 packages and 500 groups, builds the matcher's index and matches the
//! message corpus (`tests/data/fedmsg-examples.jsonl`) against it on one thread for a few
//! seconds, the way the match Lambda does (facts, then matches, per message). Everything is
//! generated deterministically from `--seed`. The cost per message is fitted as a fixed part
//! plus a part per match. `--snapshot` builds the index the way a cold match function does
//! from its snapshot (`fmn_aws::prefs_snapshot`): the users are encoded into a snapshot body
//! in memory, then decoded and indexed, with the peak memory of that part alone (no
//! emulator: the tables' reading is `fmn bench coldstart`'s).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use fmn_core::defaults::default_filters;
use fmn_core::directory::Account;
use fmn_core::matching::{IndexStats, Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::{Metadata, Registry};
use fmn_core::ownership::{Owners, Ownership};
use fmn_core::prefs::{validate_account_name, Delivery, Destination, Filter, UserPrefs};
use fmn_core::rules::{Artifact, ArtifactKind, Rule, RuleKind};

/// `fmn bench <kind>`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    kind: BenchKind,
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Match the message corpus against N synthetic users' preferences (one thread).
    Match(MatchArgs),
    /// Bus-to-delivery latency of the whole local system at a steady rate (needs the emulators).
    E2e(crate::bench_e2e::E2eArgs),
    /// A cold match function's start: N users stored, then construction to first match (needs
    /// the emulators).
    Coldstart(crate::bench_coldstart::ColdstartArgs),
    /// A full sync at Fedora's size against the FASJSON/Pagure stand-ins (needs the emulators).
    Sync(crate::bench_sync::SyncBenchArgs),
    /// One cold start, in a fresh process (run by `coldstart`; prints one JSON line).
    #[command(hide = true)]
    ColdstartProbe(crate::bench_coldstart::ProbeArgs),
}

/// Options of `fmn bench match`.
#[derive(Debug, Clone, Args)]
struct MatchArgs {
    /// Number of synthetic users.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// How long to match for, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seed of the generator (same seed, same users).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The message corpus, JSON Lines [default: tests/data/fedmsg-examples.jsonl]
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Also write the generated world into this directory as JSON, for benches of other
    /// implementations that must see the same users (tests/bench/fmn3): `users.jsonl` (each
    /// user's preferences), `ownership.json`, and `recipients.jsonl` (each corpus message's
    /// matched users, one pass).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Build the index from a snapshot body made in memory (encode, then decode and index).
    #[arg(long)]
    snapshot: bool,
    /// With `--snapshot`: leave the users' FAS accounts out of its head. With them (the
    /// default, as the function runs) "above start" undercounts: the generated accounts are
    /// freed just before decoding, and decoding reuses that memory.
    #[arg(long, requires = "snapshot")]
    no_accounts: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.kind {
        BenchKind::Match(args) => {
            let report = bench_match(&args, true, true)?;
            if let Some(dir) = &report.exported {
                println!(
                    "exported users, ownership and recipients to {}",
                    dir.display()
                );
            }
            print!("{}", report.render());
            Ok(())
        }
        BenchKind::E2e(args) => crate::bench_e2e::run(args),
        BenchKind::Coldstart(args) => crate::bench_coldstart::run(args),
        BenchKind::ColdstartProbe(args) => crate::bench_coldstart::probe(args),
        BenchKind::Sync(args) => crate::bench_sync::run(args),
    }
}

// --- Generator ---------------------------------------------------------------------------------

/// xorshift64*: small, fast, deterministic; plenty for picking test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so nearby seeds give unrelated streams (and never 0).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in [lo, hi].
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// In [lo, hi], small values much likelier (most people follow a few things).
    fn skewed(&mut self, lo: usize, hi: usize) -> usize {
        let u = self.unit();
        lo + ((u * u * (hi - lo + 1) as f64) as usize).min(hi - lo)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }
}

/// The corpus, parsed and extracted once.
pub(crate) struct Corpus {
    pub(crate) messages: Vec<(Envelope, Metadata)>,
    /// Account names the messages mention (valid ones only), sorted.
    usernames: Vec<String>,
    /// The artifacts the messages concern.
    artifacts: Vec<Artifact>,
    apps: Vec<String>,
}

pub(crate) fn default_corpus() -> PathBuf {
    let relative = Path::new("tests/data/fedmsg-examples.jsonl");
    if relative.exists() {
        return relative.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/fedmsg-examples.jsonl")
}

pub(crate) fn load_corpus(path: &Path) -> anyhow::Result<Corpus> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let registry = Registry::default();
    let mut messages = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let Ok(env) = Envelope::from_record_value(value) else {
            continue;
        };
        let meta = registry.extract(&env);
        messages.push((env, meta));
    }
    anyhow::ensure!(!messages.is_empty(), "{}: no messages", path.display());
    let mut usernames = std::collections::BTreeSet::new();
    let mut artifacts = std::collections::BTreeSet::new();
    let mut apps = std::collections::BTreeSet::new();
    for (_, meta) in &messages {
        usernames.extend(
            meta.usernames
                .iter()
                .filter(|u| validate_account_name("name", u).is_ok())
                .cloned(),
        );
        artifacts.extend(fmn_core::ownership::message_artifacts(meta));
        apps.insert(meta.app.clone());
    }
    Ok(Corpus {
        messages,
        usernames: usernames.into_iter().collect(),
        artifacts: artifacts.into_iter().collect(),
        apps: apps.into_iter().collect(),
    })
}

/// How many packages (artifacts) get owners.
pub(crate) const PACKAGES: usize = 25_000;
/// How many groups.
const GROUPS: usize = 500;
/// Packagers at most (Fedora has a few thousand): owners and group members come from them.
const MAX_PACKAGERS: usize = 3_000;
/// Share of users whose only positive rule is a regex (scanned for every message).
const REGEX_ONLY: f64 = 0.001;

/// Body regexes people write.
const BODY_REGEXES: &[&str] = &[
    "CVE-\\d{4}-\\d+",
    "(?i)security",
    "kernel",
    "fedora-atomic",
    "\\bpython3\\.\\d+",
    "(?i)rawhide",
    "gnome-shell",
    "\"karma\": -\\d",
    "firefox",
    "(?i)broken",
    "epel[789]",
    "llvm",
    "systemd",
    "\\.fc3\\d",
    "anaconda",
];

/// Package-name regexes people write.
const PACKAGE_REGEXES: &[&str] = &[
    "^python-", "^rust-", "^golang-", "^perl-", "^ghc-", "^nodejs-", "gnome", "^kernel", "^qt5?-",
    "^texlive", "^php-", "^R-", "^ocaml-", "^java", "-devel$",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ne", "to", "vi", "su", "de", "an", "el", "jo", "ma", "ri", "co", "li",
    "pa", "ze", "ti", "ho", "be", "nu", "ga", "ve",
];

const GROUP_NAMES: &[&str] = &[
    "python-sig",
    "gnome-sig",
    "kde-sig",
    "golang-sig",
    "rust-sig",
    "perl-sig",
    "ruby-sig",
    "java-sig",
    "haskell-sig",
    "ocaml-sig",
    "neuro-sig",
    "astro-sig",
    "kernel-maint",
    "fedmsg-sig",
    "infra-sig",
    "r-maint-sig",
    "nodejs-sig",
    "lxqt-sig",
    "xfce-sig",
    "stewardship-sig",
];

/// Where the generated accounts' addresses are.
const MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "redhat.com",
    "fedoraproject.org",
    "proton.me",
    "example.org",
];
/// Where the generated accounts' Matrix ids are.
const MATRIX_SERVERS: &[&str] = &["fedora.im", "matrix.org"];

/// Everything generated except the users' preferences (made lazily, one at a time, so a
/// million users never sit in memory twice).
pub(crate) struct World {
    seed: u64,
    pub(crate) names: Vec<String>,
    /// Users likely to be followed: the corpus's and the packagers.
    notable: Vec<u32>,
    pub(crate) groups: Vec<String>,
    pub(crate) packages: Vec<Artifact>,
    /// The corpus's applications.
    apps: Vec<String>,
    pub(crate) ownership: Ownership,
}

/// Sizes of the generated world besides the users.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorldSize {
    /// Packages (artifacts) with owners (at least the corpus's artifacts).
    pub packages: usize,
    /// Groups (at least the well-known SIG names).
    pub groups: usize,
}

impl Default for WorldSize {
    fn default() -> Self {
        Self {
            packages: PACKAGES,
            groups: GROUPS,
        }
    }
}

pub(crate) fn generate_world(
    corpus: &Corpus,
    n: usize,
    seed: u64,
    size: WorldSize,
    progress: bool,
) -> World {
    let mut rng = Rng::new(seed);
    // User names: the corpus's, then made-up ones (unique thanks to the number).
    let mut names: Vec<String> = corpus.usernames.iter().take(n).cloned().collect();
    let mut taken: HashSet<String> = names.iter().cloned().collect();
    let mut i = 0usize;
    while names.len() < n {
        let mut name = String::new();
        for _ in 0..rng.between(2, 3) {
            name.push_str(rng.word(SYLLABLES));
        }
        name.push_str(&i.to_string());
        i += 1;
        if taken.insert(name.clone()) {
            names.push(name);
        }
        if progress && names.len() % 250_000 == 0 {
            eprintln!("  named {}/{n} users", names.len());
        }
    }
    drop(taken);

    // Packagers: a random few thousand users.
    let packagers: Vec<u32> = if n <= MAX_PACKAGERS {
        (0..n as u32).collect()
    } else {
        let mut chosen = HashSet::new();
        while chosen.len() < MAX_PACKAGERS {
            chosen.insert(rng.below(n) as u32);
        }
        let mut v: Vec<u32> = chosen.into_iter().collect();
        v.sort_unstable();
        v
    };
    let mut notable: Vec<u32> = packagers.clone();
    notable.extend(0..corpus.usernames.len().min(n) as u32);
    notable.sort_unstable();
    notable.dedup();

    // Groups, with members: mostly packagers, sizes from 2 to ~200 (most small).
    let mut ownership = Ownership::new();
    let mut groups: Vec<String> = GROUP_NAMES.iter().map(|g| g.to_string()).collect();
    while groups.len() < size.groups {
        groups.push(format!("sig-{:03}", groups.len()));
    }
    for group in &groups {
        let size = rng.skewed(2, 200).min(n);
        let mut members = Vec::with_capacity(size);
        for _ in 0..size {
            let member = if rng.chance(0.9) {
                *rng.pick(&packagers)
            } else {
                *rng.pick(&notable)
            };
            members.push(names[member as usize].clone());
        }
        members.sort();
        members.dedup();
        ownership.set_members(group.clone(), members);
    }

    // Packages: the corpus's artifacts, then made-up rpms; 1-3 packager owners, 10% a group.
    let mut packages: Vec<Artifact> = corpus.artifacts.clone();
    let mut seen: HashSet<Artifact> = packages.iter().cloned().collect();
    let mut k = 0usize;
    while packages.len() < size.packages {
        let prefix = rng.word(&["python-", "rust-", "golang-", "perl-", "", "", "", "lib"]);
        let a = Artifact::new(
            ArtifactKind::Rpms,
            format!("{prefix}{}{}{k}", rng.word(SYLLABLES), rng.word(SYLLABLES)),
        );
        k += 1;
        if seen.insert(a.clone()) {
            packages.push(a);
        }
    }
    drop(seen);
    for artifact in &packages {
        let mut owners = Owners::default();
        for _ in 0..rng.between(1, 3) {
            owners
                .users
                .push(names[*rng.pick(&packagers) as usize].clone());
        }
        owners.users.sort();
        owners.users.dedup();
        if rng.chance(0.1) {
            owners.groups.push(rng.pick(&groups).clone());
        }
        ownership.set_owners(artifact.clone(), owners);
    }
    World {
        seed,
        names,
        notable,
        groups,
        packages,
        apps: corpus.apps.clone(),
        ownership,
    }
}

fn email(name: &str, confirmed: bool, delivery: Delivery) -> Destination {
    Destination::email("email-1", format!("{name}@fedoraproject.org"))
        .confirmed(confirmed)
        .with_delivery(delivery)
}

fn irc(name: &str, confirmed: bool) -> Destination {
    let mut nick: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(30)
        .collect();
    if !nick.starts_with(|c: char| c.is_ascii_alphabetic()) {
        nick.insert(0, 'u');
    }
    Destination {
        irc_colour: true,
        verbose: false,
        ..Destination::irc("irc-1", nick).confirmed(confirmed)
    }
}

fn filter(id: usize, name: &str, destinations: &[String], rules: Vec<Rule>) -> Filter {
    Filter::new(
        format!("filter-{id}"),
        name.into(),
        destinations.to_vec(),
        rules,
    )
}

impl World {
    /// User `i`'s FAS account as the sync copies it: a function of the seed and `i` only. Shaped
    /// like Fedora's: every account has an address (a fifth a second one), 40% an IRC nick
    /// (often not the account name), a quarter a Matrix id, 1% locked.
    pub(crate) fn account(&self, i: usize) -> Account {
        let mut r = Rng::new(self.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0xFA5);
        let name = &self.names[i];
        let mut emails = vec![format!("{name}@{}", r.word(MAIL_DOMAINS))];
        if r.chance(0.2) {
            emails.push(format!("{name}.{}@{}", r.below(100), r.word(MAIL_DOMAINS)));
        }
        let mut ircnicks = Vec::new();
        if r.chance(0.4) {
            let nick = if r.chance(0.5) {
                name.clone()
            } else {
                format!("{name}_{}", r.word(SYLLABLES))
            };
            ircnicks.push(format!("irc:/{nick}"));
        }
        if r.chance(0.25) {
            ircnicks.push(format!("matrix://{}/{name}", r.word(MATRIX_SERVERS)));
        }
        Account {
            emails,
            ircnicks,
            locked: r.chance(0.01),
        }
    }

    /// The first `users` users' FAS accounts, as the sync stores them.
    pub(crate) fn directory(&self, users: usize) -> fmn_core::directory::Directory {
        let mut directory = fmn_core::directory::Directory::new();
        for i in 0..users {
            directory.insert(self.names[i].clone(), self.account(i));
        }
        directory
    }

    /// User `i`'s preferences: a function of the seed and `i` only.
    pub(crate) fn user(&self, i: usize) -> UserPrefs {
        let mut r = Rng::new(self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
        let name = &self.names[i];
        let mut p = UserPrefs::new(name.clone());
        p.enabled = !r.chance(0.02);
        let delivery = if r.chance(0.05) {
            Delivery::Digest {
                batch_delta: Some(3600),
                batch_count: Some(50),
                schedule: None,
            }
        } else {
            Delivery::Immediate
        };
        p.destinations.push(email(name, !r.chance(0.03), delivery));
        if r.chance(0.08) {
            p.destinations.push(irc(name, r.chance(0.85)));
        }
        let dests: Vec<String> = p.destinations.iter().map(|d| d.id.clone()).collect();
        p.filters = default_filters(&p, &dests);
        let mut next = p.filters.len() + 1;
        let mut add = |p: &mut UserPrefs, fname: &str, rules: Vec<Rule>| {
            p.filters.push(filter(next, fname, &dests, rules));
            next += 1;
        };
        let x = r.unit();
        if x < 0.10 {
            // Follows packages and/or people.
            let what = r.unit();
            if what < 0.8 {
                let count = r.skewed(1, 20);
                let mut rules = vec![if r.chance(0.7) {
                    let artifacts = (0..count).map(|_| r.pick(&self.packages).clone()).collect();
                    Rule::new(RuleKind::ArtifactsFollowed { artifacts })
                } else {
                    let packages = (0..count)
                        .map(|_| r.pick(&self.packages).name.clone())
                        .collect();
                    Rule::new(RuleKind::Package { packages })
                }];
                if r.chance(0.5) {
                    rules.push(Rule::new(RuleKind::NotMyActions));
                }
                add(&mut p, "Packages I follow", rules);
            }
            if what >= 0.5 {
                let count = r.skewed(1, 20);
                let users = (0..count)
                    .map(|_| self.names[*r.pick(&self.notable) as usize].clone())
                    .collect();
                add(
                    &mut p,
                    "People I follow",
                    vec![Rule::new(RuleKind::UsersFollowed { users })],
                );
            }
        } else if x < 0.15 {
            // A group's doings.
            let rule = if r.chance(0.5) {
                RuleKind::GroupMembers {
                    group: r.pick(&self.groups).clone(),
                }
            } else {
                let groups = (0..r.between(1, 3))
                    .map(|_| r.pick(&self.groups).clone())
                    .collect();
                RuleKind::ArtifactsGroupOwned { groups }
            };
            let mut rules = vec![Rule::new(rule)];
            if r.chance(0.3) {
                rules.push(Rule::not(RuleKind::Topic {
                    glob: "*.buildsys.*".into(),
                }));
            }
            add(&mut p, "My SIG", rules);
        } else if x < 0.17 {
            // A regex, narrowed by another rule.
            let re = if r.chance(0.5) {
                RuleKind::Regex {
                    pattern: r.word(BODY_REGEXES).to_string(),
                }
            } else {
                RuleKind::PackageRegex {
                    pattern: r.word(PACKAGE_REGEXES).to_string(),
                }
            };
            let other = match r.below(10) {
                0..=3 => RuleKind::ArtifactsFollowed {
                    artifacts: (0..r.skewed(1, 5))
                        .map(|_| r.pick(&self.packages).clone())
                        .collect(),
                },
                4..=5 => RuleKind::UsersFollowed {
                    users: vec![self.names[*r.pick(&self.notable) as usize].clone()],
                },
                6 => RuleKind::GroupMembers {
                    group: r.pick(&self.groups).clone(),
                },
                7 => RuleKind::UserPackages {
                    user: String::new(),
                },
                8 => RuleKind::RelatedEvents,
                _ => RuleKind::Applications {
                    applications: vec![r.pick(&self.apps).clone()],
                },
            };
            add(
                &mut p,
                "Matching a pattern",
                vec![Rule::new(other), Rule::new(re)],
            );
        } else if x < 0.17 + REGEX_ONLY {
            // A regex alone: scanned for every message.
            let mut rules = vec![Rule::new(if r.chance(0.6) {
                RuleKind::Regex {
                    pattern: r.word(BODY_REGEXES).to_string(),
                }
            } else {
                RuleKind::PackageRegex {
                    pattern: r.word(PACKAGE_REGEXES).to_string(),
                }
            })];
            if r.chance(0.5) {
                rules.push(Rule::new(RuleKind::NotMyActions));
            }
            add(&mut p, "Anything matching", rules);
        }
        p
    }
}

// --- The benchmark -----------------------------------------------------------------------------

/// What `fmn bench match` measured.
#[derive(Debug)]
struct Report {
    users: usize,
    seed: u64,
    corpus_messages: usize,
    packages: usize,
    groups: usize,
    world_time: Duration,
    generate_time: Duration,
    build_time: Duration,
    skipped_filters: usize,
    stats: IndexStats,
    match_time: Duration,
    /// CPU time of the matching thread during the run, when known.
    match_cpu: Option<Duration>,
    messages: u64,
    matches: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    peak_memory: Option<u64>,
    /// Matches over one pass of the corpus, by filter name.
    by_filter: Vec<(String, u64)>,
    /// Where the world was exported (`--export`).
    exported: Option<PathBuf>,
    /// Cost per message fitted as fixed + per match.
    fit: CostFit,
    /// With `--snapshot`: how the index was built from it.
    snapshot: Option<SnapshotFigures>,
}

/// Building the index from an in-memory snapshot body.
#[derive(Debug, Clone, Copy)]
struct SnapshotFigures {
    bytes: usize,
    encode: Duration,
    /// The head (rule lists, ownership, the accounts' alias map) and the users, decoded.
    decode: Duration,
    /// Of `decode`: the head alone.
    head_decode: Duration,
    /// Aliases made from the head's accounts, and the bytes their map holds.
    aliases: usize,
    alias_bytes: usize,
    index_build: Duration,
    /// From the start of decoding to the first message with a match.
    to_first_match: Duration,
    /// Resident memory when decoding began and its peak after (VmHWM reset there), KiB.
    resident_before: Option<u64>,
    peak: Option<u64>,
}

/// Cost per message = `fixed` + `per_match` × matches: least squares over the median latency
/// of each number of matches (weighted by how many messages had it), so a preempted
/// message on a shared machine does not drag the fit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CostFit {
    fixed: Duration,
    per_match: Duration,
}

impl CostFit {
    fn fit(samples: &[(u32, u64)]) -> Self {
        let mut by_matches: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
        for &(n, ns) in samples {
            by_matches.entry(n).or_default().push(ns);
        }
        // (matches, median ns, weight)
        let points: Vec<(f64, f64, f64)> = by_matches
            .into_iter()
            .map(|(n, mut v)| {
                v.sort_unstable();
                (f64::from(n), v[v.len() / 2] as f64, v.len() as f64)
            })
            .collect();
        let w: f64 = points.iter().map(|p| p.2).sum();
        if w == 0.0 {
            return Self::default();
        }
        let mx = points.iter().map(|p| p.0 * p.2).sum::<f64>() / w;
        let my = points.iter().map(|p| p.1 * p.2).sum::<f64>() / w;
        let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
        let slope = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
        let fixed = (my - slope * mx).max(0.0);
        Self {
            fixed: Duration::from_nanos(fixed.round() as u64),
            per_match: Duration::from_nanos(slope.round() as u64),
        }
    }
}

impl Report {
    fn messages_per_second(&self) -> f64 {
        self.messages as f64 / self.match_time.as_secs_f64()
    }

    fn render(&self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let s = &self.stats;
        let mut out = String::new();
        out += &format!(
            "fmn bench match: {} users (seed {}), {} corpus messages, {} packages, {} groups\n",
            self.users, self.seed, self.corpus_messages, self.packages, self.groups
        );
        out += &format!(
            "index: {} users, {} filters ({} scanned for every message), {} keys, {} postings, \
             {} distinct rules, {} distinct rule sets{}\n",
            s.users,
            s.filters,
            s.scanned_filters,
            s.keys,
            s.postings,
            s.distinct_rules,
            s.distinct_rule_sets,
            if self.skipped_filters > 0 {
                format!(", {} filters skipped", self.skipped_filters)
            } else {
                String::new()
            }
        );
        out += &format!(
            "generation: ownership and names {:.2} s, preferences {:.2} s\n",
            self.world_time.as_secs_f64(),
            self.generate_time.as_secs_f64()
        );
        out += &format!("index build: {:.3} s\n", self.build_time.as_secs_f64());
        out += &format!(
            "matching (one thread): {} messages in {:.2} s: {:.0} messages/s\n",
            self.messages,
            self.match_time.as_secs_f64(),
            self.messages_per_second()
        );
        if let Some(cpu) = self.match_cpu {
            out += &format!(
                "  on CPU {:.2} s ({:.0}% of the time): {:.0} messages per CPU second\n",
                cpu.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / self.match_time.as_secs_f64(),
                self.messages as f64 / cpu.as_secs_f64().max(1e-9)
            );
        }
        out += &format!(
            "per message: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs\n",
            us(self.p50),
            us(self.p99),
            us(self.max)
        );
        out += &format!(
            "matches per message: {:.2} on average\n",
            self.matches as f64 / self.messages.max(1) as f64
        );
        out += &format!(
            "cost per message (fit over the median latency at each number of matches): \
             {:.2} µs fixed + {:.3} µs per match\n",
            us(self.fit.fixed),
            us(self.fit.per_match)
        );
        out += "matches in one pass over the corpus, by filter:";
        for (name, n) in &self.by_filter {
            out += &format!(" {name:?} {n};");
        }
        out += "\n";
        out += &match self.peak_memory {
            Some(kib) => format!("peak memory (VmHWM): {:.0} MiB\n", kib as f64 / 1024.0),
            None => "peak memory (VmHWM): unknown\n".to_string(),
        };
        if let Some(snap) = &self.snapshot {
            let mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
            let above = snap
                .peak
                .zip(snap.resident_before)
                .map(|(p, b)| p.saturating_sub(b));
            out += &format!(
                "from a snapshot in memory: {:.1} MB ({:.0} bytes a user), encoded in {:.2} s; \
                 decode {:.3} s (of which the head, with the alias map made from its accounts, \
                 {} aliases in {:.1} MiB: {:.3} s) + index build {:.3} s, {:.3} s to the first match; resident \
                 {:.0} MiB before, peak {:.0} MiB after (VmHWM reset before decoding): {:.0} MiB \
                 for decoding and the index, {:.0} bytes a user, {:.0} a posting\n",
                snap.bytes as f64 / 1e6,
                snap.bytes as f64 / self.users.max(1) as f64,
                snap.encode.as_secs_f64(),
                snap.decode.as_secs_f64(),
                snap.aliases,
                snap.alias_bytes as f64 / (1024.0 * 1024.0),
                snap.head_decode.as_secs_f64(),
                snap.index_build.as_secs_f64(),
                snap.to_first_match.as_secs_f64(),
                mib(snap.resident_before),
                mib(snap.peak),
                mib(above),
                above.map_or(f64::NAN, |a| a as f64 * 1024.0 / self.users.max(1) as f64),
                above.map_or(f64::NAN, |a| a as f64 * 1024.0 / s.postings.max(1) as f64),
            );
        }
        out
    }
}

/// Peak resident memory in KiB, from /proc/self/status.
pub(crate) fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of the calling thread, from /proc (10 ms resolution).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here, in 1/100 s.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Users made in batches, timing the making apart from the indexing.
struct Users<'a> {
    world: &'a World,
    next: usize,
    batch: std::vec::IntoIter<UserPrefs>,
    spent: Duration,
    progress: Option<Instant>,
}

impl Iterator for Users<'_> {
    type Item = UserPrefs;

    fn next(&mut self) -> Option<UserPrefs> {
        if let Some(u) = self.batch.next() {
            return Some(u);
        }
        let n = self.world.names.len();
        if self.next >= n {
            return None;
        }
        if let Some(start) = self.progress {
            if self.next > 0 && self.next % 100_000 == 0 {
                eprintln!(
                    "  indexed {}/{n} users ({:.1} s)",
                    self.next,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        let t = Instant::now();
        let end = (self.next + 1000).min(n);
        let batch: Vec<UserPrefs> = (self.next..end).map(|i| self.world.user(i)).collect();
        self.next = end;
        self.spent += t.elapsed();
        self.batch = batch.into_iter();
        self.batch.next()
    }
}

/// Runs the benchmark; `verbose` prints progress for big runs, `leak` skips freeing the index
/// and the generated data at the end (seconds for a million users; the process exits anyway).
fn bench_match(args: &MatchArgs, verbose: bool, leak: bool) -> anyhow::Result<Report> {
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    let path = args.corpus.clone().unwrap_or_else(default_corpus);
    let corpus = load_corpus(&path)?;
    let big = verbose && args.users >= 100_000;

    if big {
        eprintln!("generating names, groups and ownership…");
    }
    let t = Instant::now();
    let mut world = generate_world(&corpus, args.users, args.seed, WorldSize::default(), big);
    let world_time = t.elapsed();
    let ownership = Arc::new(std::mem::take(&mut world.ownership));

    if big {
        eprintln!("generating and indexing {} users…", args.users);
    }
    let t = Instant::now();
    let mut users = Users {
        world: &world,
        next: 0,
        batch: Vec::new().into_iter(),
        spent: Duration::ZERO,
        progress: big.then_some(t),
    };
    let (matcher, skipped, generate_time, build_time, snapshot, ownership) = if args.snapshot {
        let encoded = Instant::now();
        let mut builder = fmn_aws::prefs_snapshot::SnapshotBuilder::new();
        for u in &mut users {
            builder.add(&u);
        }
        let user_count = builder.users() as usize;
        // Each user's FAS account, as the sync stores them and the snapshot's head holds them.
        let accounts = world.directory(if args.no_accounts { 0 } else { user_count });
        let body = builder.finish(&ownership, &accounts.aliases(), accounts.len(), None);
        drop(accounts);
        let encode = encoded.elapsed();
        let generate_time = users.spent;
        drop(ownership);
        let (matcher, skipped, figures, ownership) =
            index_from_snapshot(&body, user_count, &corpus)?;
        let figures = SnapshotFigures {
            encode: encode.saturating_sub(generate_time),
            ..figures
        };
        let build_time = figures.index_build;
        (
            matcher,
            skipped,
            generate_time,
            build_time,
            Some(figures),
            ownership,
        )
    } else {
        let (matcher, skipped) = Matcher::build(&mut users, ownership.clone());
        let generate_time = users.spent;
        let build_time = t.elapsed().saturating_sub(generate_time);
        (matcher, skipped, generate_time, build_time, None, ownership)
    };
    let stats = matcher.stats();

    if big {
        eprintln!("matching for {} s…", args.seconds);
    }
    let deadline = Duration::from_secs_f64(args.seconds);
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut samples: Vec<(u32, u64)> = Vec::with_capacity(1 << 20);
    let mut matches = 0u64;
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    // At least one whole pass over the corpus, however long it takes (every message is
    // measured once even on a slow or busy machine); then until the deadline.
    'run: for pass in 0.. {
        for (env, meta) in &corpus.messages {
            let t = Instant::now();
            let facts = MessageFacts::new(env, meta, &ownership);
            let got = matcher.matches(&facts);
            let n = got.len();
            drop(std::hint::black_box(got));
            drop(facts);
            let ns = t.elapsed().as_nanos() as u64;
            latencies.push(ns);
            samples.push((n as u32, ns));
            matches += n as u64;
            if pass > 0 && start.elapsed() >= deadline {
                break 'run;
            }
        }
        if start.elapsed() >= deadline {
            break 'run;
        }
    }
    let match_time = start.elapsed();
    let match_cpu = cpu_start
        .zip(thread_cpu_time())
        .map(|(a, b)| b.saturating_sub(a));
    let mut by_filter = std::collections::BTreeMap::<String, u64>::new();
    for (env, meta) in &corpus.messages {
        let facts = MessageFacts::new(env, meta, &ownership);
        for m in matcher.matches(&facts) {
            *by_filter.entry(m.filter_name.to_string()).or_default() += 1;
        }
    }
    if let Some(dir) = &args.export {
        export_world(dir, &world, &ownership, &corpus, &matcher)?;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_nanos(latencies[i])
    };
    let report = Report {
        users: args.users,
        seed: args.seed,
        corpus_messages: corpus.messages.len(),
        packages: world.packages.len(),
        groups: world.groups.len(),
        world_time,
        generate_time,
        build_time,
        skipped_filters: skipped.len(),
        stats,
        match_time,
        match_cpu,
        messages: latencies.len() as u64,
        matches,
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        peak_memory: peak_memory_kib(),
        by_filter: by_filter.into_iter().collect(),
        exported: args.export.clone(),
        fit: CostFit::fit(&samples),
        snapshot,
    };
    if leak {
        std::mem::forget(matcher);
        std::mem::forget(world);
    }
    Ok(report)
}

/// Writes `users.jsonl`, `ownership.json` and `recipients.jsonl` into `dir` (see
/// [`MatchArgs::export`]). Recipients are users with at least one match: the unit another
/// implementation can be compared on, whatever its destinations look like.
fn export_world(
    dir: &Path,
    world: &World,
    ownership: &Ownership,
    corpus: &Corpus,
    matcher: &Matcher,
) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let create = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(std::io::BufWriter::new(file))
    };
    let mut users = create("users.jsonl")?;
    for i in 0..world.names.len() {
        serde_json::to_writer(&mut users, &world.user(i))?;
        users.write_all(b"\n")?;
    }
    users.flush()?;
    let mut owners = create("ownership.json")?;
    serde_json::to_writer(&mut owners, ownership)?;
    owners.flush()?;
    let mut recipients = create("recipients.jsonl")?;
    for (env, meta) in &corpus.messages {
        let facts = MessageFacts::new(env, meta, ownership);
        let matched: std::collections::BTreeSet<String> = matcher
            .matches(&facts)
            .iter()
            .map(|m| m.user.to_string())
            .collect();
        let line = serde_json::json!({
            "id": env.msg_id,
            "topic": env.topic,
            "users": matched,
        });
        serde_json::to_writer(&mut recipients, &line)?;
        recipients.write_all(b"\n")?;
    }
    recipients.flush()?;
    Ok(())
}

/// Resident memory now, in KiB, from /proc/self/status.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Decodes a snapshot body into a fresh index as a cold start does, and matches the corpus
/// until a message matches somebody. The peak resident memory (VmHWM) is reset first, so it
/// is this part's.
#[allow(clippy::type_complexity)]
fn index_from_snapshot(
    body: &[u8],
    user_count: usize,
    corpus: &Corpus,
) -> anyhow::Result<(
    Matcher,
    Vec<fmn_core::matching::SkippedFilter>,
    SnapshotFigures,
    Arc<Ownership>,
)> {
    // "5" resets the peak resident size to the current one (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let resident_before = resident_kib();
    let started = Instant::now();
    let (facts, users) = fmn_aws::prefs_snapshot::Decoded::decode(body)?.into_parts();
    // The match function keeps the alias map the head holds (made from the accounts).
    let aliases = facts.aliases;
    let mut decode = started.elapsed();
    let head_decode = decode;
    let ownership = Arc::new(facts.ownership);
    let mut matcher = Matcher::new(ownership.clone());
    // As the match function does, from its manifest.
    matcher.reserve(user_count);
    let mut skipped = Vec::new();
    let mut index_build = Duration::ZERO;
    let mut users = users;
    loop {
        let t = Instant::now();
        let Some(u) = users.next() else { break };
        let u = u?;
        let t2 = Instant::now();
        decode += t2 - t;
        skipped.extend(matcher.upsert(&u));
        index_build += t2.elapsed();
    }
    drop(users);
    for (env, meta) in &corpus.messages {
        let facts = MessageFacts::new(env, meta, &ownership);
        if !matcher.matches(&facts).is_empty() {
            break;
        }
    }
    let to_first_match = started.elapsed();
    let figures = SnapshotFigures {
        bytes: body.len(),
        encode: Duration::ZERO,
        decode,
        head_decode,
        aliases: aliases.len(),
        alias_bytes: aliases.heap_bytes(),
        index_build,
        to_first_match,
        resident_before,
        peak: peak_memory_kib(),
    };
    Ok((matcher, skipped, figures, ownership))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_fit_finds_fixed_and_per_match_parts() {
        // 2 µs + 0.5 µs a match, with a preempted outlier the medians ignore.
        let mut samples: Vec<(u32, u64)> = (0..50u32)
            .flat_map(|n| std::iter::repeat_n((n, 2_000 + 500 * u64::from(n)), 3))
            .collect();
        samples.push((3, 9_000_000));
        let fit = CostFit::fit(&samples);
        assert_eq!(fit.fixed, Duration::from_nanos(2_000));
        assert_eq!(fit.per_match, Duration::from_nanos(500));
        assert_eq!(CostFit::fit(&[]), CostFit::default());
    }

    #[test]
    fn a_snapshot_built_index_equals_the_direct_one() {
        let mut a = args(300);
        let direct = bench_match(&a, false, false).unwrap();
        a.snapshot = true;
        let snap = bench_match(&a, false, false).unwrap();
        assert_eq!(direct.stats, snap.stats);
        assert_eq!(direct.by_filter, snap.by_filter);
        let figures = snap.snapshot.unwrap();
        assert!(figures.bytes > 0);
        assert!(snap.render().contains("from a snapshot in memory"));
    }

    fn args(users: usize) -> MatchArgs {
        MatchArgs {
            users,
            seconds: 0.1,
            seed: 7,
            corpus: Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../tests/data/fedmsg-examples.jsonl"),
            ),
            export: None,
            snapshot: false,
            no_accounts: false,
        }
    }

    #[test]
    fn a_small_bench_runs_and_matches() {
        let report = bench_match(&args(200), false, false).unwrap();
        assert_eq!(report.users, 200);
        assert!(report.stats.users > 150, "{report:?}");
        assert!(report.stats.filters >= 2 * report.stats.users);
        assert_eq!(report.skipped_filters, 0);
        assert!(report.messages >= report.corpus_messages as u64);
        assert!(report.matches > 0, "{report:?}");
        assert!(report.p50 <= report.p99 && report.p99 <= report.max);
        let text = report.render();
        assert!(text.contains("messages/s"), "{text}");
    }

    #[test]
    fn the_export_holds_the_same_users_and_their_recipients() {
        let dir = std::env::temp_dir().join(format!("fmn-bench-export-{}", std::process::id()));
        let mut a = args(300);
        a.export = Some(dir.clone());
        let report = bench_match(&a, false, false).unwrap();
        assert_eq!(report.exported.as_deref(), Some(dir.as_path()));
        let users: Vec<UserPrefs> = std::fs::read_to_string(dir.join("users.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let corpus = load_corpus(a.corpus.as_deref().unwrap()).unwrap();
        let world = generate_world(&corpus, 300, a.seed, WorldSize::default(), false);
        assert_eq!(users.len(), 300);
        for (i, u) in users.iter().enumerate() {
            assert_eq!(*u, world.user(i));
        }
        let ownership: Ownership =
            serde_json::from_str(&std::fs::read_to_string(dir.join("ownership.json")).unwrap())
                .unwrap();
        let recipients: Vec<serde_json::Value> =
            std::fs::read_to_string(dir.join("recipients.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(recipients.len(), corpus.messages.len());
        // The recipients are what a matcher built from the exported data decides.
        let ownership = Arc::new(ownership);
        let (matcher, _) = Matcher::build(users, ownership.clone());
        let mut any = 0;
        for ((env, meta), line) in corpus.messages.iter().zip(&recipients) {
            let facts = MessageFacts::new(env, meta, &ownership);
            let want: std::collections::BTreeSet<String> = matcher
                .matches(&facts)
                .iter()
                .map(|m| m.user.to_string())
                .collect();
            let got: std::collections::BTreeSet<String> =
                serde_json::from_value(line["users"].clone()).unwrap();
            assert_eq!(got, want, "{}", line["topic"]);
            any += got.len();
        }
        assert!(any > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generation_is_deterministic_and_valid() {
        let corpus = load_corpus(args(1).corpus.as_deref().unwrap()).unwrap();
        let a = generate_world(&corpus, 500, 3, WorldSize::default(), false);
        let b = generate_world(&corpus, 500, 3, WorldSize::default(), false);
        assert_eq!(a.names, b.names);
        assert_eq!(a.packages.len(), PACKAGES);
        for i in 0..500 {
            let u = a.user(i);
            assert_eq!(u, b.user(i));
            u.validate().unwrap_or_else(|e| panic!("user {i}: {e}"));
        }
    }
}
