//! Who may see, edit and delete which product: decided only through the
//! permission core (`UserPerms`), never by a group's name.

use crate::db::catalog::Visibility;
use crate::db::perms::MODERATOR_PERMISSIONS;
use crate::django::perms::UserPerms;

/// Publishing decides who sees unpublished products.
pub const PUBLISH_PERMISSION: &str = "catalog.can_publish_product";
pub const DELETE_PERMISSION: &str = "catalog.delete_product";

/// The list a user sees: everything with the publish permission, else the
/// published products plus their own.
pub fn list_visibility(user_id: i64, perms: &UserPerms) -> Visibility {
    if perms.has_perm(PUBLISH_PERMISSION) {
        Visibility::All
    } else {
        Visibility::PublishedOrOwnedBy(user_id)
    }
}

/// Which edit form a user gets for a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditForm {
    /// Name, description, image, category, price, and the versions.
    Owner,
    /// Publication, description and category only.
    Moderator,
}

/// The owner and superusers get the owner form; a holder of all three
/// moderator permissions the moderator form; anyone else nothing (403).
pub fn edit_form(user_id: i64, perms: &UserPerms, owner_id: Option<i64>) -> Option<EditForm> {
    if perms.is_superuser || owner_id == Some(user_id) {
        Some(EditForm::Owner)
    } else if perms.has_perms(&MODERATOR_PERMISSIONS) {
        Some(EditForm::Moderator)
    } else {
        None
    }
}

/// The owner, or a holder of `catalog.delete_product`.
pub fn may_delete(user_id: i64, perms: &UserPerms, owner_id: Option<i64>) -> bool {
    owner_id == Some(user_id) || perms.has_perm(DELETE_PERMISSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(superuser: bool, held: &[&str]) -> UserPerms {
        UserPerms {
            is_active: true,
            is_superuser: superuser,
            perms: held.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn forms_follow_ownership_and_permissions() {
        let plain = perms(false, &[]);
        assert_eq!(edit_form(1, &plain, Some(1)), Some(EditForm::Owner));
        assert_eq!(edit_form(1, &plain, Some(2)), None);
        assert_eq!(edit_form(1, &plain, None), None);
        assert_eq!(
            edit_form(1, &perms(true, &[]), Some(2)),
            Some(EditForm::Owner)
        );
        assert_eq!(
            edit_form(1, &perms(false, &MODERATOR_PERMISSIONS), Some(2)),
            Some(EditForm::Moderator)
        );
        // An owner who is also a moderator edits as the owner.
        assert_eq!(
            edit_form(1, &perms(false, &MODERATOR_PERMISSIONS), Some(1)),
            Some(EditForm::Owner)
        );
        assert_eq!(
            edit_form(1, &perms(false, &MODERATOR_PERMISSIONS[..2]), Some(2)),
            None
        );
    }

    #[test]
    fn deleting_and_listing() {
        assert!(may_delete(1, &perms(false, &[]), Some(1)));
        assert!(!may_delete(1, &perms(false, &[]), Some(2)));
        assert!(may_delete(1, &perms(false, &[DELETE_PERMISSION]), Some(2)));
        assert!(may_delete(1, &perms(true, &[]), None));
        assert!(matches!(
            list_visibility(3, &perms(false, &[])),
            Visibility::PublishedOrOwnedBy(3)
        ));
        assert!(matches!(
            list_visibility(3, &perms(false, &[PUBLISH_PERMISSION])),
            Visibility::All
        ));
    }
}
