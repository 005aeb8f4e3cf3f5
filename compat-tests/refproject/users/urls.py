from django.urls import path

from users.apps import UsersConfig
from users.views import (
    PasswordResetView,
    ProfileView,
    RegisterView,
    UserLoginView,
    UserLogoutView,
    email_confirm,
)

app_name = UsersConfig.name

urlpatterns = [
    path("register/", RegisterView.as_view(), name="register"),
    path("email-confirm/<str:token>/", email_confirm, name="email_confirm"),
    path("login/", UserLoginView.as_view(), name="login"),
    path("logout/", UserLogoutView.as_view(), name="logout"),
    path("password-reset/", PasswordResetView.as_view(), name="password_reset"),
    path("profile/", ProfileView.as_view(), name="profile"),
]
