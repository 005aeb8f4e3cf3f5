"""Jinja2 environment for the reference project: the usual `url()` and
`static()` globals, and a `localtime` filter (an aware datetime shown in
TIME_ZONE), which the Rust side defines the same way."""
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from jinja2 import Environment

LOCALTIME_FORMAT = "%d.%m.%Y %H:%M"


def url(name, *args, **kwargs):
    return reverse(name, args=args or None, kwargs=kwargs or None)


def localtime(value):
    if not value:
        return ""
    return timezone.localtime(value).strftime(LOCALTIME_FORMAT)


def environment(**options):
    env = Environment(**options)
    env.globals.update({"url": url, "static": static})
    env.filters["localtime"] = localtime
    return env
