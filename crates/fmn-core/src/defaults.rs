//! The filters a new account starts with, after the old FMN's `fmn/lib/defaults.py`: events
//! on the artifacts I maintain, and events about me, both without my own actions and without
//! the noisy events users asked to have left out (each exclusion is a negated topic glob,
//! named after the old rule it replaces).

use crate::prefs::{Destination, DestinationKind, Filter, PrefsError, UserPrefs};
use crate::rules::{Rule, RuleKind};

/// Noise on packages (old `exclusion_packages`).
const EXCLUDED_ON_PACKAGES: &[&str] = &[
    "*.taskotron.result.new",      // taskotron_result_new
    "*.git.pkgdb2branch.start",    // git_pkgdb2branch_start (fmn#45)
    "*.git.pkgdb2branch.complete", // git_pkgdb2branch_complete
    "*.fedoratagger.*",            // fedoratagger_catchall (fmn#79)
    "*.faf.report.threshold1",     // faf_report_threshold1
    "*.faf.problem.threshold1",    // faf_problem_threshold1
    "*.bodhi.masher.start",        // bodhi_masher_start (fmn#103)
    "*.mdapi.repo.update",         // mdapi_repo_update
];

/// Noise in both filters (old `exclusion_mutual`).
const EXCLUDED_EVERYWHERE: &[&str] = &[
    "*.copr.build.start",             // copr_build_start
    "*.copr.chroot.start",            // copr_chroot_start
    "*.copr.worker.create",           // copr_worker_create
    "*.buildsys.rpm.sign",            // koji_rpm_sign
    "*.buildsys.tag",                 // koji_tag
    "*.buildsys.untag",               // koji_untag
    "*.buildsys.repo.done",           // koji_repo_done
    "*.buildsys.repo.init",           // koji_repo_init
    "*.buildsys.package.list.change", // koji_package_list_change
    "*.summershum.*",                 // summershum_catchall (fmn#27)
    "*.anitya.*",                     // anitya_catchall
];

fn excluding(globs: &'static [&'static str]) -> impl Iterator<Item = Rule> {
    globs.iter().map(|g| {
        Rule::not(RuleKind::Topic {
            glob: (*g).to_string(),
        })
    })
}

/// The default filters, feeding `destinations` (destination ids).
pub fn default_filters(prefs: &UserPrefs, destinations: &[String]) -> Vec<Filter> {
    let mut packages = vec![
        Rule::new(RuleKind::UserPackages {
            user: String::new(),
        }),
        Rule::new(RuleKind::NotMyActions),
    ];
    packages.extend(excluding(EXCLUDED_ON_PACKAGES));
    packages.extend(excluding(EXCLUDED_EVERYWHERE));
    let mut about_me = vec![
        Rule::new(RuleKind::RelatedEvents),
        Rule::new(RuleKind::NotMyActions),
    ];
    about_me.extend(excluding(EXCLUDED_EVERYWHERE));

    let first = prefs.next_id("filter");
    let mut with_first = prefs.clone();
    with_first
        .filters
        .push(Filter::new(first.clone(), String::new(), vec![], vec![]));
    let second = with_first.next_id("filter");
    vec![
        Filter::new(
            first,
            "Events on packages I maintain".into(),
            destinations.to_vec(),
            packages,
        ),
        Filter::new(
            second,
            "Events referring to me".into(),
            destinations.to_vec(),
            about_me,
        ),
    ]
}

/// What a new account starts with (see [`new_account`]).
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    /// An admin-managed bot account.
    pub bot: bool,
    /// Destinations to create, ids `email-1`, `irc-1`….
    pub destinations: Vec<(DestinationKind, String)>,
    /// Whoever creates the account vouches for the addresses.
    pub confirmed: bool,
    /// The default filters, feeding every destination.
    pub with_defaults: bool,
}

/// A new account `name` as `options` say. Validated.
pub fn new_account(name: &str, options: &NewAccount) -> Result<UserPrefs, PrefsError> {
    let mut prefs = UserPrefs::new(name);
    prefs.bot = options.bot;
    for (kind, address) in &options.destinations {
        let id = prefs.next_id(kind.as_str());
        prefs
            .destinations
            .push(Destination::new(id, *kind, address.as_str()).confirmed(options.confirmed));
    }
    if options.with_defaults {
        let ids: Vec<String> = prefs.destinations.iter().map(|d| d.id.clone()).collect();
        prefs.filters = default_filters(&prefs, &ids);
    }
    prefs.validate()?;
    Ok(prefs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_identical_across_users() {
        let a = default_filters(&UserPrefs::new("alice"), &[]);
        let b = default_filters(&UserPrefs::new("bob"), &[]);
        assert_eq!(a, b, "defaults hold no user name, so users share them");
        let mut p = UserPrefs::new("alice");
        p.filters = a;
        p.validate().unwrap();
        assert_ne!(p.filters[0].id, p.filters[1].id);
    }
}
