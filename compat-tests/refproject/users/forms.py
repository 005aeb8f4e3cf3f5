from django import forms
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

try:
    from django.contrib.auth.forms import AdminUserCreationForm
except ImportError:
    # Django < 5.1: the admin's add form is the plain UserCreationForm
    # (no "usable password" choice), as Django's own UserAdmin had it.
    AdminUserCreationForm = UserCreationForm

from users.models import User


class StyleFormMixin:
    """Bootstrap classes on every widget, as the original templates expect."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = "form-check-input"
            else:
                field.widget.attrs["class"] = "form-control"


class UserRegisterForm(StyleFormMixin, UserCreationForm):
    """Registration: `email`, `password1`, `password2`."""

    class Meta:
        model = User
        fields = ("email",)


class UserProfileForm(StyleFormMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ("first_name", "last_name", "phone", "country", "avatar")


class PasswordResetForm(StyleFormMixin, forms.Form):
    email = forms.EmailField(label="Почта", max_length=254)

    def clean_email(self):
        email = self.cleaned_data["email"]
        try:
            self.user = User.objects.get(email__iexact=email)
        except User.DoesNotExist:
            raise forms.ValidationError("Пользователь с такой почтой не найден.")
        return email


class AdminUserAddForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


# Whether the admin's add form offers "Password-based authentication" (5.1+).
ADMIN_ADD_HAS_USABLE_PASSWORD = "usable_password" in AdminUserAddForm.base_fields


class AdminUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
