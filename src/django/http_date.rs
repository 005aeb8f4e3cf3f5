//! `django.utils.http.http_date`: a time as RFC 9110's fixed date
//! (`Wed, 25 Nov 2026 16:14:42 GMT`), what `Expires` headers and cookie
//! attributes carry. Written out by hand: chrono's `format` parses its
//! pattern on every call, and two such dates go out with every page.

use std::fmt::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn http_date(at: DateTime<Utc>) -> String {
    let mut date = String::with_capacity(29);
    let _ = write!(
        date,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[at.weekday().num_days_from_monday() as usize],
        at.day(),
        MONTHS[at.month0() as usize],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    );
    date
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_pythons_formatdate_with_usegmt() {
        // email.utils.formatdate(t, usegmt=True), as Django's http_date.
        for (epoch, expected) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (1_795_625_682, "Wed, 25 Nov 2026 16:54:42 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ] {
            let at = DateTime::from_timestamp(epoch, 0).unwrap();
            assert_eq!(http_date(at), expected, "{epoch}");
        }
        // Every day of a leap year and a common one, against chrono's strftime.
        let start = DateTime::from_timestamp(1_704_067_200 + 3_723, 0).unwrap();
        for day in 0..731 {
            let at = start + chrono::Duration::seconds(day * 86_400 + day * 37);
            assert_eq!(
                http_date(at),
                at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
            );
        }
    }
}
