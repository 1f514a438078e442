//! Nagios, infrastructure monitoring (`nagios.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Nagios.
pub struct Nagios;

/// The account in an acknowledgement author (`http://name.id.fedoraproject.org/` or `name`).
fn ack_user(author: &str) -> &str {
    let rest = author.rsplit("://").next().unwrap_or_default();
    rest.split('.').next().unwrap_or_default()
}

impl Processor for Nagios {
    fn services(&self) -> &'static [&'static str] {
        &["nagios"]
    }

    fn app(&self) -> &'static str {
        "nagios"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        for key in ["service_ack_author", "host_ack_author"] {
            if let Some(author) = m.get(key).filter(|a| py::truthy(a)) {
                out.user(ack_user(&py::str(author)));
            }
        }
        let state = match m.str("state").unwrap_or_default() {
            "CRITICAL" => "down",
            "WARNING" => "having problems",
            "OK" => "back up",
            _ => "in an unknown state",
        };
        let host = m.fmt_or_none("host");
        let mut result = if m.ends("host.state.change") {
            Some(format!("{host} is {state}"))
        } else if m.ends("service.state.change") {
            let service = m
                .fmt("service")
                .unwrap_or_else(|| "some service".to_owned());
            Some(format!("{service} is {state} on {host}"))
        } else {
            None
        };
        if m.str("type") == Some("ACKNOWLEDGEMENT") {
            let agent = out
                .usernames
                .iter()
                .next()
                .cloned()
                .unwrap_or_else(|| "somebody".to_owned());
            result = result.map(|r| format!("{agent} acknowledged that {r}"));
            out.agent = out.usernames.iter().next().cloned();
        }
        if let (Some(r), Some(output)) = (result.as_mut(), m.fmt("output")) {
            r.push_str(&format!(": \"{output}\""));
        }
        out.subtitle = result;
        out.link = Some(format!(
            "https://admin.fedoraproject.org/nagios/cgi-bin/status.cgi?navbarsearch=1&host={host}"
        ));
    }
}
