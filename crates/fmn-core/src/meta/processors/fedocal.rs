//! Fedocal, the Fedora calendar (`fedocal.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Fedocal.
pub struct Fedocal;

fn subtitle(m: &Ctx) -> String {
    let user = m.fmt_or_none("agent");
    let calendar = m.fmt_or_none("calendar.calendar_name");
    let meeting = m.fmt_or_none("meeting.meeting_name");
    if m.has("fedocal.meeting.reminder") {
        // The upstream wording depends on the current time; say when instead.
        let when = format!(
            "{} {}",
            m.fmt_or_none("meeting.meeting_date"),
            m.fmt_or_none("meeting.meeting_time_start")
        );
        format!(
            "Friendly reminder!  The \"{meeting}\" meeting from the \"{calendar}\" calendar starts {when}"
        )
    } else if m.has("fedocal.meeting.update") {
        format!("{user} updated the \"{meeting}\" meeting from the \"{calendar}\" calendar")
    } else if m.has("fedocal.meeting.delete") {
        format!("{user} deleted the \"{meeting}\" meeting from the \"{calendar}\" calendar")
    } else if m.has("fedocal.meeting.new") {
        format!("{user} created a \"{meeting}\" meeting in the \"{calendar}\" calendar")
    } else if m.has("fedocal.calendar.new") {
        format!("{user} created a whole new \"{calendar}\" calendar")
    } else if m.has("fedocal.calendar.update") {
        format!("{user} updated the \"{calendar}\" calendar")
    } else if m.has("fedocal.calendar.delete") {
        format!("{user} deleted the \"{calendar}\" calendar")
    } else if m.has("fedocal.calendar.clear") {
        format!("{user} cleared the \"{calendar}\" calendar of all its meetings")
    } else if m.has("fedocal.calendar.upload") {
        format!("{user} uploaded an iCalendar file into the calendar \"{calendar}\"")
    } else {
        String::new()
    }
}

impl Processor for Fedocal {
    fn services(&self) -> &'static [&'static str] {
        &["fedocal"]
    }

    fn app(&self) -> &'static str {
        "fedocal"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = Some(subtitle(m));
        let base = "https://apps.fedoraproject.org/calendar/";
        out.link = match m.get("meeting.meeting_id") {
            Some(id) => Some(format!("{base}meeting/{}/", py::str(id))),
            None => m
                .fmt("calendar.calendar_name")
                .map(|c| format!("{base}{c}/")),
        };
        if let Some(agent) = m.get("agent") {
            out.set_agent(py::str(agent));
        }
    }
}
