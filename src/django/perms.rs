//! Permission checks as `PermissionsMixin` with `ModelBackend` decide them.
//! The caller loads the user's flags and the `app_label.codename` strings of
//! their own and their groups' permissions (through `django_content_type`);
//! the rules about what those mean live here.

use std::collections::HashSet;

/// What `ModelBackend` knows about a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPerms {
    pub is_active: bool,
    pub is_superuser: bool,
    /// `user_permissions` plus the permissions of the user's groups, each as
    /// `app_label.codename`.
    pub perms: HashSet<String>,
}

impl UserPerms {
    /// An anonymous user: no permission at all.
    pub fn anonymous() -> UserPerms {
        UserPerms::default()
    }

    /// `user.has_perm(perm)`: active superusers have every permission, even
    /// one that does not exist; inactive users have none; everyone else
    /// what they hold.
    pub fn has_perm(&self, perm: &str) -> bool {
        self.is_active && (self.is_superuser || self.perms.contains(perm))
    }

    /// `user.has_perm(perm, obj)`: `ModelBackend` has no object permissions,
    /// so only the active-superuser shortcut says yes.
    pub fn has_object_perm(&self, _perm: &str) -> bool {
        self.is_active && self.is_superuser
    }

    /// `user.has_perms(perm_list)`: all of them (so an empty list is true).
    pub fn has_perms<S: AsRef<str>>(&self, perms: &[S]) -> bool {
        perms.iter().all(|p| self.has_perm(p.as_ref()))
    }

    /// `user.has_perms(perm_list, obj)`.
    pub fn has_object_perms<S: AsRef<str>>(&self, perms: &[S]) -> bool {
        perms.iter().all(|p| self.has_object_perm(p.as_ref()))
    }

    /// `user.has_module_perms(app_label)`: any permission of that app.
    pub fn has_module_perms(&self, app_label: &str) -> bool {
        self.is_active
            && (self.is_superuser
                || self
                    .perms
                    .iter()
                    .any(|p| p.split_once('.').is_some_and(|(app, _)| app == app_label)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn perms_match_django() {
        let users = vectors::list("perms");
        assert!(users.len() >= 4);
        let mut checked = 0;
        for user in users {
            let u = UserPerms {
                is_active: user["is_active"].as_bool().unwrap(),
                is_superuser: user["is_superuser"].as_bool().unwrap(),
                perms: vectors::strings(user, "perms").into_iter().collect(),
            };
            for check in user["has_perm"].as_array().unwrap() {
                let perm = vectors::str(check, "perm");
                let want = check["result"].as_bool().unwrap();
                if check["obj"].as_bool().unwrap() {
                    assert_eq!(u.has_object_perm(perm), want, "{user} {check}");
                } else {
                    assert_eq!(u.has_perm(perm), want, "{user} {check}");
                }
                checked += 1;
            }
            for check in user["has_perms"].as_array().unwrap() {
                let list = vectors::strings(check, "perms");
                let want = check["result"].as_bool().unwrap();
                if check["obj"].as_bool().unwrap() {
                    assert_eq!(u.has_object_perms(&list), want, "{user} {check}");
                } else {
                    assert_eq!(u.has_perms(&list), want, "{user} {check}");
                }
                checked += 1;
            }
            for check in user["has_module_perms"].as_array().unwrap() {
                let label = vectors::str(check, "app_label");
                assert_eq!(
                    u.has_module_perms(label),
                    check["result"].as_bool().unwrap(),
                    "{user} {check}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 40);
    }

    #[test]
    fn anonymous_has_nothing() {
        let a = UserPerms::anonymous();
        assert!(!a.has_perm("catalog.view_product"));
        assert!(!a.has_module_perms("catalog"));
        assert!(a.has_perms::<&str>(&[]));
    }
}
