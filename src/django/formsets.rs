//! The management form of a submitted formset, as Django's `formsets.py`
//! reads it: how many rows were sent and how many of them edit existing
//! objects, with Django's Russian messages, for a formset with the default
//! limits (`max_num` 1000, `absolute_max` 2000).

use crate::django::form_fields::clean_integer;

/// `DEFAULT_MAX_NUM`: the `max_num` a formset has unless given one.
pub const DEFAULT_MAX_NUM: usize = 1000;
/// The `absolute_max` a formset has unless given one:
/// `max_num + DEFAULT_MAX_NUM`.
const DEFAULT_ABSOLUTE_MAX: usize = DEFAULT_MAX_NUM + DEFAULT_MAX_NUM;

/// The counts of a valid management form.
#[derive(Debug, PartialEq, Eq)]
pub struct ManagementForm {
    /// `TOTAL_FORMS`: the rows to clean, `0..total`.
    pub total: usize,
    /// `INITIAL_FORMS`, at most `total`: the first `initial` rows edit
    /// existing objects, the others add new ones.
    pub initial: usize,
}

impl ManagementForm {
    /// Reads `<prefix>-TOTAL_FORMS` and `<prefix>-INITIAL_FORMS` through
    /// `get`. A count that is missing or not a number (a negative one
    /// included) gives `missing_management_form`; more than `absolute_max`
    /// rows give `too_many_forms`. Either way the message is the formset's
    /// only error, and no row is cleaned.
    pub fn clean<'a>(
        prefix: &str,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<ManagementForm, String> {
        let count = |name: &str| {
            let field = format!("{prefix}-{name}");
            clean_integer(get(&field), 0, i64::MAX).ok().ok_or(field)
        };
        let (total, initial) = match (count("TOTAL_FORMS"), count("INITIAL_FORMS")) {
            (Ok(total), Ok(initial)) => (total, initial),
            (total, initial) => {
                let missing: Vec<String> = [total, initial]
                    .into_iter()
                    .filter_map(Result::err)
                    .collect();
                return Err(format!(
                    "Данные ManagementForm отсутствуют или были подделаны. Отсутствующие поля: {}. Если проблема не исчезнет, вам может потребоваться отправить отчет об ошибке.",
                    missing.join(", ")
                ));
            }
        };
        if total > DEFAULT_ABSOLUTE_MAX as i64 {
            return Err(format!(
                "Пожалуйста, отправьте не больше {DEFAULT_MAX_NUM} форм."
            ));
        }
        Ok(ManagementForm {
            total: total as usize,
            initial: initial.min(total) as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(pairs: &[(&str, &'static str)]) -> Result<ManagementForm, String> {
        ManagementForm::clean("versions", |name| {
            pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    #[test]
    fn counts_are_read_checked_and_bounded() {
        let form = clean(&[
            ("versions-TOTAL_FORMS", " 3 "),
            ("versions-INITIAL_FORMS", "5"),
        ]);
        assert_eq!(
            form,
            Ok(ManagementForm {
                total: 3,
                initial: 3
            })
        );

        let missing = clean(&[("versions-INITIAL_FORMS", "-1")]).unwrap_err();
        assert!(
            missing.contains("Отсутствующие поля: versions-TOTAL_FORMS, versions-INITIAL_FORMS."),
            "{missing}"
        );

        let at_most = clean(&[
            ("versions-TOTAL_FORMS", "2000"),
            ("versions-INITIAL_FORMS", "0"),
        ]);
        assert_eq!(at_most.map(|f| f.total), Ok(2000));
        let too_many = clean(&[
            ("versions-TOTAL_FORMS", "2001"),
            ("versions-INITIAL_FORMS", "0"),
        ]);
        assert_eq!(
            too_many,
            Err("Пожалуйста, отправьте не больше 1000 форм.".to_string())
        );
    }
}
