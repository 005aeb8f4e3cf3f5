"""The whole site in a real browser: headless Chromium driven through
Selenium against `unchained serve`, on SQLite, PostgreSQL and MariaDB.

One walk per back end, on a fresh database (file e-mail back end, a media
folder in tmp):

 1. register at /users/register/            -> the login page (as the original)
 2. open the link of the confirmation letter -> the login page
 3. log in                                   -> home, the nav shows the e-mail
 4. create a product with an image           -> home, its card is unpublished
 5. add two versions on the edit page (the second row through #add-version)
                                             -> detail: the image loads, the current version
 6. log out                                  -> anonymous navigation
 7. a moderator (setup-moderators, group add-user) publishes it
 8. a third user sees it on the home page

Each step leaves a screenshot in <repo>/target/browser-artifacts/<backend>/
(kept after the run; a failure adds NN-FAILED.png and NN-FAILED.html).

Chromium: /usr/bin/chromium and /usr/bin/chromedriver (Debian packages
`chromium` and `chromium-driver`; scripts/test.sh installs them). Nothing is
downloaded. Without chromedriver the test skips locally and fails when CI is
set; a chromedriver that cannot start a browser always fails the test.
"""
import io
import os
import re
import shutil
import urllib.parse
import uuid

import pytest

from live import Database, LiveServer, confirmation_link, form_token, new_email

SECRET_KEY = "Xq3vTb9LmZ0pR7kW2yH5sD8fJ1nC4gE6uA0oI9tB3cQ="  # conftest.TEST_SECRET_KEY
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--window-size=1280,1000",
)
PASSWORD = "Correct-Horse-42"
WAIT = 20  # seconds for a page to arrive


# ---------------------------------------------------------------- browser


@pytest.fixture
def chrome():
    """A headless Chromium through /usr/bin/chromedriver."""
    in_ci = bool(os.environ.get("CI"))
    if not os.path.exists(CHROMEDRIVER):
        message = (f"{CHROMEDRIVER} is missing: install the Debian packages chromium and "
                   f"chromium-driver (scripts/test.sh does)")
        if in_ci:
            pytest.fail(message)
        pytest.skip(message)
    # Selenium is in requirements.txt: its absence is a broken setup, not a skip.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    if os.path.exists(CHROMIUM):
        options.binary_location = CHROMIUM
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as e:  # noqa: BLE001 - any failure to start is a test failure
        pytest.fail(f"Chromium did not start through {CHROMEDRIVER}: {e}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Walk:
    """The browser, the server and the artifacts of one walk."""

    def __init__(self, driver, server, db, mail_dir, artifacts):
        self.driver = driver
        self.server = server
        self.db = db
        self.mail_dir = mail_dir
        self.artifacts = artifacts
        self.shots = 0

    # -- navigation

    def url(self, path):
        return self.server.base_url + path

    def open(self, path):
        self.driver.get(self.url(path))

    @property
    def path(self):
        """The current path plus query, e.g. /users/login/?next=/"""
        parts = urllib.parse.urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def wait_path(self, expected, what):
        """Waits until the browser is at `expected` (a path, or a callable on the path)."""
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import TimeoutException

        check = expected if callable(expected) else (lambda p: p == expected)
        try:
            WebDriverWait(self.driver, WAIT).until(lambda d: check(self.path))
        except TimeoutException:
            raise AssertionError(
                f"{what}: expected to be at {expected!r}, the browser is at {self.path!r}\n"
                f"page text:\n{self.text()[:2500]}\nserver log:\n{self.server.log_text()}"
            ) from None

    def wait_for(self, css, what):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import TimeoutException

        try:
            return WebDriverWait(self.driver, WAIT).until(
                lambda d: d.find_element(By.CSS_SELECTOR, css)
            )
        except TimeoutException:
            raise AssertionError(
                f"{what}: no {css!r} on {self.path!r}\npage text:\n{self.text()[:2500]}"
            ) from None

    # -- the page

    def find(self, css, within=None):
        from selenium.webdriver.common.by import By
        from selenium.common.exceptions import NoSuchElementException

        try:
            return (within or self.driver).find_element(By.CSS_SELECTOR, css)
        except NoSuchElementException:
            raise AssertionError(
                f"no {css!r} on {self.path!r}\npage source:\n{self.driver.page_source[:4000]}"
            ) from None

    def find_all(self, css, within=None):
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def text(self):
        from selenium.webdriver.common.by import By

        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception:  # noqa: BLE001 - only for messages
            return self.driver.page_source

    def fill(self, element_id, value):
        el = self.find(f"#{element_id}")
        el.clear()
        el.send_keys(value)
        return el

    def tick(self, element_id, on=True):
        el = self.find(f"#{element_id}")
        assert el.get_attribute("type") == "checkbox", f"#{element_id} is not a checkbox"
        if el.is_selected() != on:
            el.click()
        assert el.is_selected() == on
        return el

    def submit(self, form_css):
        """Clicks the form's submit button, as a user does, and waits until
        the browser has left the page (the form went stale)."""
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import (
            StaleElementReferenceException, TimeoutException, WebDriverException)

        def gone(_driver):
            # Mid-navigation Chromium may answer "Node with given id does not
            # belong to the document" instead of a stale-element error.
            try:
                form.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return True
                return False

        form = self.find(form_css)
        self.find("button[type=submit]", form).click()
        try:
            WebDriverWait(self.driver, WAIT).until(gone)
        except TimeoutException:
            raise AssertionError(
                f"submitting {form_css!r} on {self.path!r} did not load a page\n"
                f"page text:\n{self.text()[:2500]}"
            ) from None

    def nav_email(self):
        who = self.find_all("a.who")
        return who[0].text.strip() if who else None

    def shot(self, name):
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"screenshot {path} failed"
        return path

    # -- whole steps shared by the users

    def register_in_browser(self, address):
        self.open("/users/register/")
        self.fill("id_email", address)
        self.fill("id_password1", PASSWORD)
        self.fill("id_password2", PASSWORD)
        self.submit("main form")
        self.wait_path("/users/login/", f"registering {address}")

    def register_over_http(self, address):
        """Registers and confirms a user with plain HTTP requests."""
        client = self.server.browser()
        page = client.get("/users/register/")
        assert page.status == 200, page
        r = client.post("/users/register/", {
            "csrfmiddlewaretoken": form_token(page.text),
            "email": address, "password1": PASSWORD, "password2": PASSWORD,
        })
        assert r.status == 302 and r.location == "/users/login/", f"register {address}: {r!r}\n{r.text[:2000]}"
        assert self.user(address)["is_active"] is False, f"{address} is active before confirming"
        link = confirmation_link(self.mail_dir, address, logs=self.server.log_text)
        r = client.get(urllib.parse.urlsplit(link).path)
        assert r.status == 302 and r.location == "/users/login/", f"confirm {address}: {r!r}"
        assert self.user(address)["is_active"] is True

    def login(self, address):
        self.open("/users/login/")
        self.fill("id_username", address)
        self.fill("id_password", PASSWORD)
        self.submit("main form")
        self.wait_path("/", f"login of {address}")
        assert self.nav_email() == address, (
            f"after login the nav shows {self.nav_email()!r}, not {address!r}"
        )

    def logout(self):
        self.submit("form.logout")
        # LOGOUT_REDIRECT_URL is "/", which sends anonymous visitors to the login page.
        self.wait_path(lambda p: p in ("/", "/users/login/?next=/"), "logout")
        self.wait_for("main", "page after logout")
        assert self.nav_email() is None, f"still logged in after logout: {self.nav_email()!r}"
        assert not self.find_all("form.logout"), "the logout form is still in the nav"
        nav = self.find("nav").text
        assert "Войти" in nav and "Регистрация" in nav, f"anonymous nav expected, got {nav!r}"

    def user(self, address):
        row = self.db.one(
            "SELECT id, is_active, token, password FROM users_user WHERE email = %s", address
        )
        return {"id": row[0], "is_active": bool(row[1]), "token": row[2], "password": row[3]}

    def card(self, pk):
        cards = self.find_all(f'article.product-card[data-pk="{pk}"]')
        return cards[0] if cards else None


def write_png(path):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (240, 160), (30, 120, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 220, 140), outline=(255, 255, 255), width=6)
    draw.ellipse((80, 40, 160, 120), fill=(250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


# ---------------------------------------------------------------- the walk


def test_browser_walk(db_backend, fresh_db, chrome, unchained_bin, run_unchained, repo_root, tmp_path):
    artifacts = repo_root / "target" / "browser-artifacts" / db_backend
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    print(f"\nbrowser screenshots ({db_backend}): {artifacts}")

    url = fresh_db("browser")
    db = Database(url)
    run_unchained(url, "migrate")
    category_name = "Кофе и чай"
    db.execute("INSERT INTO catalog_category (name, description) VALUES (%s, %s)",
               category_name, "Напитки")
    category_id = db.one("SELECT id FROM catalog_category WHERE name = %s", category_name)[0]

    mail_dir = tmp_path / "mail"
    media_root = tmp_path / "media"
    mail_dir.mkdir()
    media_root.mkdir()
    server = LiveServer(
        unchained_bin, url, SECRET_KEY,
        env={"ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0", "EMAIL_BACKEND": "file",
             "EMAIL_FILE_PATH": mail_dir, "MEDIA_ROOT": media_root},
        log_path=tmp_path / "serve.log",
    )
    server.start()
    walk = Walk(chrome, server, db, mail_dir, artifacts)
    try:
        _walk(walk, category_id, category_name, run_unchained, url, media_root, tmp_path)
    except BaseException:
        try:
            walk.shots += 1
            chrome.save_screenshot(str(artifacts / f"{walk.shots:02d}-FAILED.png"))
            (artifacts / f"{walk.shots:02d}-FAILED.html").write_text(chrome.page_source)
            print(f"failed at {walk.path}; server log:\n{server.log_text()}")
        except Exception:  # noqa: BLE001 - keep the original failure
            pass
        raise
    finally:
        server.stop()


def _walk(walk, category_id, category_name, run_unchained, url, media_root, tmp_path):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    db = walk.db
    owner = new_email("owner")

    # 1. Registration -> the login page; an inactive user with a token.
    walk.register_in_browser(owner)
    user = walk.user(owner)
    assert user["is_active"] is False and user["token"], user
    assert user["password"].startswith("pbkdf2_sha256$"), user["password"]
    walk.shot("registered")

    # 2. The letter's link -> the login page; the user is active, the token cleared.
    link = confirmation_link(walk.mail_dir, owner, logs=walk.server.log_text)
    parts = urllib.parse.urlsplit(link)
    assert parts.netloc == f"127.0.0.1:{walk.server.port}", f"the link names another host: {link}"
    assert parts.path == f"/users/email-confirm/{user['token']}/", (link, user["token"])
    walk.driver.get(link)
    walk.wait_path("/users/login/", "opening the confirmation link")
    walk.find("#id_username")
    user = walk.user(owner)
    assert user["is_active"] is True and not user["token"], user
    walk.shot("email-confirmed-login-page")

    # 3. Login -> home; the nav shows the e-mail.
    walk.login(owner)
    assert not walk.find_all("article.product-card"), "a fresh database shows products"
    walk.shot("logged-in-home")

    # 4. A product with an image, created through the form -> home, unpublished.
    png = write_png(tmp_path / "espresso cup.png")
    name = f"Эспрессо-машина {uuid.uuid4().hex[:6]}"
    description = "Двойной бойлер.\nГотовит <b>крепкий</b> кофе & чай."
    walk.open("/products/create/")
    form = walk.find("form#product-form")
    assert form.get_attribute("enctype") == "multipart/form-data", form.get_attribute("enctype")
    assert form.get_attribute("method").lower() == "post"
    walk.fill("id_name", name)
    assert walk.find("#id_description").tag_name == "textarea"
    walk.fill("id_description", description)
    Select(walk.find("#id_category")).select_by_value(str(category_id))
    walk.fill("id_price", "13119.00")
    walk.find("#id_image").send_keys(str(png))
    walk.shot("create-form-filled")
    walk.submit("form#product-form")
    walk.wait_path("/", "creating the product")
    row = db.one(
        "SELECT id, name, description, image, category_id, price, is_moderated, owner_id "
        "FROM catalog_product WHERE name = %s", name)
    pk, _, stored_description, image, stored_category, price, is_moderated, owner_id = row
    # Browsers submit a textarea's line breaks as CRLF; Django stores them as sent.
    submitted_description = description.replace("\n", "\r\n")
    assert stored_description == submitted_description, repr(stored_description)
    assert stored_category == category_id and owner_id == user["id"], row
    assert str(price) in ("13119.00", "13119", "13119.0"), price
    assert not bool(is_moderated), row
    assert re.fullmatch(r"products/espresso_cup(_[A-Za-z0-9]{7})?\.png", image), image
    assert (media_root / image).read_bytes() == png.read_bytes(), "the stored image differs"
    card = walk.card(pk)
    assert card is not None, f"no card data-pk={pk} on the home page:\n{walk.text()[:2500]}"
    assert walk.find(".product-name", card).text.strip() == name
    assert walk.find_all(".badge-unpublished", card), "the new product's card is not marked unpublished"
    price_text = walk.find(".product-price", card).text
    assert "13119,00" in price_text.replace("\u00a0", "").replace(" ", ""), price_text
    walk.shot("product-created-unpublished")

    # 5. Edit page through the detail page's links; two versions, the second
    # row added by #add-version; back on the detail page the image loads.
    walk.find("a.product-link", card).click()
    walk.wait_path(f"/products/{pk}/", "the card's product link")
    assert walk.find("h1.product-name").text.strip() == name
    assert category_name in walk.text(), "the detail page does not name the category"
    walk.find("a#edit-link").click()
    walk.wait_path(f"/products/{pk}/update/", "the detail page's edit link")
    total = walk.find("#id_versions-TOTAL_FORMS")
    assert total.get_attribute("value") == "1", f"TOTAL_FORMS {total.get_attribute('value')!r}"
    assert walk.find("#id_versions-INITIAL_FORMS").get_attribute("value") == "0"
    assert not walk.find_all("#id_versions-1-version_number"), "a second row before #add-version"
    walk.fill("id_versions-0-version_number", "1")
    walk.fill("id_versions-0-version_name", "Первая <серия>")
    walk.tick("id_versions-0-is_current")
    walk.find("#add-version").click()
    walk.wait_for("#id_versions-1-version_number", "#add-version")
    assert walk.find("#id_versions-TOTAL_FORMS").get_attribute("value") == "2", (
        "#add-version did not raise versions-TOTAL_FORMS to 2"
    )
    for field in ("version_name", "is_current", "DELETE"):
        walk.find(f"#id_versions-1-{field}")
    assert not walk.find("#id_versions-1-is_current").is_selected()
    walk.fill("id_versions-1-version_number", "2")
    walk.fill("id_versions-1-version_name", "Вторая")
    walk.shot("edit-form-two-version-rows")
    walk.submit("form#product-form")
    walk.wait_path(f"/products/{pk}/", "saving the versions")
    versions = db.rows(
        "SELECT version_number, version_name, is_current FROM catalog_version "
        "WHERE product_id = %s ORDER BY version_number", pk)
    assert [(v[0], v[1], bool(v[2])) for v in versions] == [
        (1, "Первая <серия>", True), (2, "Вторая", False)], versions
    img = walk.find("img.product-image")
    src = img.get_attribute("src")
    assert urllib.parse.urlsplit(src).path == f"/media/{image}", src
    WebDriverWait(walk.driver, WAIT).until(
        lambda d: d.execute_script("return arguments[0].complete", img))
    natural_width = walk.driver.execute_script("return arguments[0].naturalWidth", img)
    assert natural_width == 240, f"the product image did not load from {src}: naturalWidth={natural_width}"
    current = walk.find(".current-version").text
    assert "Первая <серия>" in current, f".current-version shows {current!r}"
    assert "13119,00" in walk.find(".product-price").text.replace("\u00a0", "").replace(" ", "")
    walk.shot("detail-image-and-current-version")

    # 6. Logout through the nav's POST form -> anonymous navigation.
    walk.logout()
    walk.shot("logged-out")
    walk.open(f"/products/{pk}/")
    walk.wait_path(f"/users/login/?next=/products/{pk}/", "an anonymous visit to the detail page")

    # 7. A moderator publishes the product.
    moderator = new_email("moderator")
    walk.register_over_http(moderator)
    run_unchained(url, "setup-moderators")
    run_unchained(url, "group", "add-user", "moderators", moderator)
    group_perms = db.rows(
        "SELECT p.codename FROM auth_group g "
        "JOIN auth_group_permissions gp ON gp.group_id = g.id "
        "JOIN auth_permission p ON p.id = gp.permission_id WHERE g.name = %s ORDER BY 1", "moderators")
    assert [r[0] for r in group_perms] == [
        "can_change_category", "can_change_description", "can_publish_product"], group_perms
    walk.login(moderator)
    assert walk.card(pk) is not None, "the moderator (can_publish_product) does not see the unpublished product"
    walk.open(f"/products/{pk}/update/")
    walk.wait_for("form#product-form", "the moderator's update page")
    assert walk.path == f"/products/{pk}/update/", walk.path
    walk.find("#id_is_moderated")
    for absent in ("#id_price", "#id_name", "#id_image", "#id_versions-TOTAL_FORMS"):
        assert not walk.find_all(absent), f"the moderator form has {absent}"
    walk.find("#id_description")
    walk.find("#id_category")
    assert not walk.find("#id_is_moderated").is_selected()
    walk.tick("id_is_moderated")
    walk.shot("moderator-form")
    walk.submit("form#product-form")
    walk.wait_path(f"/products/{pk}/", "the moderator saving the product")
    assert not walk.find_all(".badge-unpublished"), "the detail page still shows badge-unpublished"
    row = db.one("SELECT is_moderated, price, owner_id, description FROM catalog_product WHERE id = %s", pk)
    assert bool(row[0]) and str(row[1]).startswith("13119") and row[2] == user["id"], row
    assert row[3] == submitted_description, f"the moderator form changed the description: {row[3]!r}"
    assert db.one("SELECT COUNT(*) FROM catalog_version WHERE product_id = %s", pk)[0] == 2
    walk.shot("moderator-published")
    walk.logout()

    # 8. A third user sees the product, published, on the home page.
    viewer = new_email("viewer")
    walk.register_over_http(viewer)
    walk.login(viewer)
    card = walk.card(pk)
    assert card is not None, f"the published product is not on the viewer's home page:\n{walk.text()[:2500]}"
    assert walk.find(".product-name", card).text.strip() == name
    assert not walk.find_all(".badge-unpublished", card), "the published product is still marked unpublished"
    walk.shot("viewer-sees-published-product")
    walk.logout()
    walk.shot("viewer-logged-out")
