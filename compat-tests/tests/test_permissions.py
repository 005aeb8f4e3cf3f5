"""Permissions decided by the Rust side exactly as Django's ModelBackend does.

Per back end: a fresh database migrated by `unchained migrate`; Django's ORM
(the reference project, in a subprocess) fills it from a fixed random seed
with a few hundred users (random is_active / is_superuser), groups with random
permissions, random direct permissions, plus an extra permission added by code
and a stale content type of a removed app, then answers `user.has_perm(name)`
for every user and every permission name (all that exist, and some that do
not). The probe's `has_perm` op must give the same answer for every pair.
Then Django changes grants, flags and groups and both are asked again.
"""
import json
import os
import subprocess
from collections import Counter

from probe import probe  # noqa: F401  (the fixture)

SEED = 4242
N_USERS = 240
N_GROUPS = 15
BATCH = 1500

# Names Django answers False for whoever asks (no such permission), chosen to
# catch lookups by codename only, by model, case-insensitive or trimmed.
MISSING_NAMES = [
    "catalog.no_such_perm",
    "users.can_publish_product",      # a real codename under another app
    "auth.change_user",               # auth.User is swapped out: no such permission
    "catalog.Can_publish_product",
    "CATALOG.can_publish_product",
    "catalog.can_publish_product ",
    " catalog.can_publish_product",
    "catalog.product.view_product",
    "catalog",
    "",
    ".can_publish_product",
    "can_publish_product",
    "legacy.no_such",
    "nonexistent_app.view_product",
]

CUSTOM = ["catalog.can_publish_product", "catalog.can_change_description", "catalog.can_change_category"]

DJANGO_SCRIPT = r'''
import json, os, random, sys

refproject, seed, phase, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
n_users, n_groups = int(sys.argv[5]), int(sys.argv[6])
missing = json.loads(sys.argv[7])
sys.path.insert(0, refproject)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django
django.setup()

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from users.models import User

rng = random.Random(f"{seed}-{phase}")


def perm_name(p):
    return f"{p.content_type.app_label}.{p.codename}"


with transaction.atomic():
    if phase == "create":
        # What an admin's database may hold besides migrate's rows: a
        # permission added by code, and a removed app's stale content type.
        product_ct = ContentType.objects.get(app_label="catalog", model="product")
        Permission.objects.create(codename="special_access", name="Special access", content_type=product_ct)
        legacy_ct = ContentType.objects.create(app_label="legacy", model="widget")
        Permission.objects.create(codename="use_widget", name="Use widget", content_type=legacy_ct)

        perms = list(Permission.objects.select_related("content_type").order_by("id"))
        groups = []
        for i in range(n_groups):
            g = Group.objects.create(name=f"группа {i}")
            g.permissions.set(rng.sample(perms, rng.choice([0, 1, 2, 3, 5, 8, 13])))
            groups.append(g)
        unusable = make_password(None)
        for i in range(n_users):
            kind = rng.choice(["group_only", "direct_only", "both", "none"])
            u = User.objects.create(
                email=f"user{i}@example.com",
                password=unusable,
                is_active=rng.random() < 0.7,
                is_superuser=rng.random() < 0.15,
                is_staff=rng.random() < 0.3,
            )
            if kind in ("group_only", "both"):
                u.groups.set(rng.sample(groups, rng.randint(1, 3)))
            if kind in ("direct_only", "both"):
                u.user_permissions.set(rng.sample(perms, rng.randint(1, 6)))
    else:
        # What admins do later: grants revoked and added, a group deleted,
        # users deactivated, promoted, demoted.
        perms = list(Permission.objects.select_related("content_type").order_by("id"))
        groups = list(Group.objects.order_by("id"))
        groups[0].delete()
        for g in groups[1:6]:
            g.permissions.set(rng.sample(perms, rng.randint(0, 10)))
        for u in User.objects.order_by("id"):
            r = rng.random()
            if r < 0.1:
                u.is_active = not u.is_active
                u.save(update_fields=["is_active"])
            elif r < 0.2:
                u.is_superuser = not u.is_superuser
                u.save(update_fields=["is_superuser"])
            elif r < 0.3:
                u.user_permissions.clear()
            elif r < 0.4:
                u.user_permissions.add(*rng.sample(perms, 2))
            elif r < 0.5:
                u.groups.clear()
        # A permission deleted outright (its grants go with it).
        Permission.objects.get(codename="special_access").delete()

names = sorted({perm_name(p) for p in Permission.objects.select_related("content_type")})
checks, users = [], {}
for u in User.objects.order_by("id"):
    u = User.objects.get(pk=u.pk)  # fresh: no permission cache
    direct = {perm_name(p) for p in u.user_permissions.select_related("content_type")}
    via_groups = {perm_name(p) for p in Permission.objects.filter(group__user=u).select_related("content_type")}
    users[u.pk] = {
        "is_active": u.is_active,
        "is_superuser": u.is_superuser,
        "groups": u.groups.count(),
        "direct": sorted(direct),
        "via_groups": sorted(via_groups),
    }
    for name in names + missing:
        checks.append({"user_id": u.pk, "perm": name, "expected": u.has_perm(name)})
json.dump({"checks": checks, "users": users, "names": names}, open(out, "w"))
'''


def django_answers(venv_python, refproject_dir, tmp_path, database_url, phase):
    script = tmp_path / "perm_script.py"
    script.write_text(DJANGO_SCRIPT)
    out = tmp_path / f"django_{phase}.json"
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ=",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    proc = subprocess.run(
        [str(venv_python), str(script), str(refproject_dir), str(SEED), phase, str(out),
         str(N_USERS), str(N_GROUPS), json.dumps(MISSING_NAMES)],
        env=env, cwd=str(refproject_dir), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"Django script failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    data = json.loads(out.read_text())
    data["users"] = {int(k): v for k, v in data["users"].items()}
    return data


def rust_answers(probe, database_url, checks):
    results = []
    for start in range(0, len(checks), BATCH):
        batch = [{"user_id": c["user_id"], "perm": c["perm"]} for c in checks[start:start + BATCH]]
        got = probe.expect("has_perm", "results", database_url=database_url, checks=batch)
        assert isinstance(got, list) and len(got) == len(batch), (
            f"has_perm answered {len(got) if isinstance(got, list) else got!r} results for {len(batch)} checks"
        )
        assert all(isinstance(r, bool) for r in got), got[:20]
        results.extend(got)
    return results


def coverage(data):
    """Counts of the situations the comparison must include."""
    c = Counter()
    names = set(data["names"])
    for check in data["checks"]:
        u = data["users"][check["user_id"]]
        perm, want = check["perm"], check["expected"]
        direct, grouped = perm in u["direct"], perm in u["via_groups"]
        if perm not in names:
            # Only an active superuser "has" a permission that does not exist.
            if u["is_active"] and u["is_superuser"]:
                c["missing name, active superuser"] += 1
                assert want, check
            else:
                c["missing name"] += 1
                assert not want, check
            continue
        if not u["is_active"]:
            c["inactive"] += 1
            c["inactive with grant"] += direct or grouped
            c["inactive superuser"] += u["is_superuser"]
            assert not want, (check, u)
        elif u["is_superuser"]:
            c["active superuser, not granted"] += not (direct or grouped)
        elif grouped and not direct:
            c["group-only grant"] += 1
        elif direct and not grouped:
            c["direct-only grant"] += 1
        elif direct and grouped:
            c["group and direct grant"] += 1
        else:
            c["active, not granted"] += 1
        c["custom permission"] += perm in CUSTOM
        c["granted"] += want
    return c


def compare(data, results, phase):
    mismatches = []
    for check, got in zip(data["checks"], results):
        if got != check["expected"]:
            u = data["users"][check["user_id"]]
            perm = check["perm"]
            mismatches.append(
                f"user {check['user_id']} (is_active={u['is_active']}, is_superuser={u['is_superuser']}, "
                f"groups={u['groups']}, direct={'yes' if perm in u['direct'] else 'no'}, "
                f"via group={'yes' if perm in u['via_groups'] else 'no'}) perm {perm!r}: "
                f"Django {check['expected']}, Rust {got}"
            )
    assert not mismatches, (
        f"{phase}: {len(mismatches)} of {len(results)} has_perm answers differ from Django:\n"
        + "\n".join(mismatches[:40])
    )


def test_has_perm_matches_django(db_backend, fresh_db, run_unchained, probe, venv_python,
                                 refproject_dir, tmp_path):
    url = fresh_db("perms")
    run_unchained(url, "migrate")

    for phase in ("create", "change"):
        data = django_answers(venv_python, refproject_dir, tmp_path, url, phase)
        checks = data["checks"]
        cov = coverage(data)
        assert len(checks) >= 5000, len(checks)
        for situation in ("missing name", "missing name, active superuser", "inactive with grant", "inactive superuser",
                          "active superuser, not granted", "group-only grant", "direct-only grant",
                          "active, not granted", "custom permission", "granted"):
            assert cov[situation] >= 5, f"{phase}: too few checks of kind {situation!r}: {dict(cov)}"
        assert set(CUSTOM) <= set(data["names"])
        results = rust_answers(probe, url, checks)
        compare(data, results, phase)
