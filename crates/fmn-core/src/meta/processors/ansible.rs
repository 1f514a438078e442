//! Fedora Infrastructure ansible runs (`ansible.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Ansible.
pub struct Ansible;

const FS_PREFIX: &str = "/srv/web/infra/ansible/";

/// (checked into the ansible repo?, playbook path relative to it or file name).
fn relative_playbook(playbook: &str) -> (bool, &str) {
    match playbook.strip_prefix(FS_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, playbook.rsplit('/').next().unwrap_or_default()),
    }
}

impl Processor for Ansible {
    fn services(&self) -> &'static [&'static str] {
        &["ansible"]
    }

    fn app(&self) -> &'static str {
        "ansible"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let user = m
            .fmt("userid")
            .unwrap_or_else(|| "(no user specified)".to_owned());
        let raw = m.fmt_or_none("playbook");
        let (controlled, playbook) = relative_playbook(&raw);
        out.subtitle = Some(if m.has("ansible.playbook.start") {
            format!("{user} started an ansible run of {playbook}")
        } else if m.has("ansible.playbook.complete") {
            format!("{user}'s {playbook} playbook run completed")
        } else {
            String::new()
        });
        out.link = controlled.then(|| {
            format!("http://infrastructure.fedoraproject.org/cgit/ansible.git/tree/{playbook}")
        });
        if m.truthy("userid") {
            out.set_agent(m.fmt_or_none("userid"));
        }
    }
}
