from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from users.forms import ADMIN_ADD_HAS_USABLE_PASSWORD, AdminUserAddForm, AdminUserChangeForm
from users.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's UserAdmin with the e-mail as the login field."""

    form = AdminUserChangeForm
    add_form = AdminUserAddForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "phone", "country", "avatar")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
        ("Верификация", {"fields": ("token",)}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    ("email", "usable_password", "password1", "password2")
                    if ADMIN_ADD_HAS_USABLE_PASSWORD
                    else ("email", "password1", "password2")  # Django < 5.1
                ),
            },
        ),
    )
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active")
    search_fields = ("email", "first_name", "last_name", "phone")
    ordering = ("email",)
