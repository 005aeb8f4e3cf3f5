"""Jinja2 environment for the reference project: the usual `url()` and `static()` globals."""
from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment


def url(name, *args, **kwargs):
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options):
    env = Environment(**options)
    env.globals.update({"url": url, "static": static})
    return env
