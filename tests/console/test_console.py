"""The admin console in a real, headless Chromium (selenium + Debian's
chromium-driver), against the real service and PostgreSQL.

usage: test_console.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD SCREENSHOT_DIR
(DATABASE_URL in the environment: what the console did is checked there too).
Prints one "console: ok <name>" line per flow and "console: N passed".
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

base, admin_email, admin_password, shots = sys.argv[1:5]
database = os.environ["DATABASE_URL"]
PASSWORD = "console test passphrase 8"


# --- the API and the database, to check what the console did ------------------

def call(method, path, token=None, json_body=None, form=None):
    headers = {}
    data = None
    if json_body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(json_body).encode()
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = urllib.parse.urlencode(form).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def login(email, password=PASSWORD):
    status, body = call("POST", "/token", form={"username": email, "password": password})
    assert status == 200, (status, body)
    return body["access_token"]


def sql(query):
    out = subprocess.run(["psql", database, "-tAc", query], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def totp(secret, offset=0):
    """The code an authenticator app shows `offset` seconds from now (oathtool plays the app)."""
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + offset))
    out = subprocess.run(["oathtool", "--totp", "-b", "-N", at, secret],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def enable_mfa(email):
    """Enrols `email` (password PASSWORD) in TOTP through the API; returns the secret."""
    token = login(email)
    status, enrolment = call("POST", "/users/me/mfa/totp", token, {"current_password": PASSWORD})
    assert status == 201, (status, enrolment)
    status, body = call("POST", "/users/me/mfa/totp/confirm", token, {"code": totp(enrolment["secret"])})
    assert status == 200 and len(body["recovery_codes"]) == 10, (status, body)
    return enrolment["secret"]


def new_user(token, role):
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    status, body = call("POST", "/admin/users", token,
                        {"email": email, "password": PASSWORD, "role": role})
    assert status == 201, (status, body)
    return email


# --- the browser ------------------------------------------------------------------

def browser(width=1280, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, condition, timeout=10):
    return WebDriverWait(driver, timeout).until(condition)


def text_of(driver, css):
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, css))).text


def wait_text(driver, css, expected, timeout=10):
    wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), expected), timeout)


def sign_in(driver, email, password=PASSWORD):
    driver.get(base + "/console/")
    wait(driver, EC.visibility_of_element_located((By.ID, "email")))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#signin button").click()


def visible_nav(driver):
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#nav a") if a.is_displayed()]


def go(driver, hash_):
    driver.execute_script("location.hash = arguments[0]", hash_)


def console_errors(driver):
    """Browser log entries that are not the network log of refused requests
    (a 401 or 403 the console shows on purpose): script errors, CSP reports."""
    return [e for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network"]


passed = 0


def ok(name):
    global passed
    passed += 1
    print(f"console: ok {name}", flush=True)


def admin():
    """A fresh admin token: access tokens live 3 s in this run (scripts/console/run)."""
    return login(admin_email, admin_password)


driver = browser()
try:
    # The console's own page: no inline script, a strict policy.
    with urllib.request.urlopen(base + "/console/") as resp:
        html = resp.read().decode()
        csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
    assert all('src="' in tag.split(">")[0] for tag in html.split("<script")[1:]), html
    ok("no inline script, strict CSP")

    # --- the admin's flow ---
    sign_in(driver, admin_email, admin_password)
    wait(driver, EC.visibility_of_element_located((By.ID, "figures")))
    driver.save_screenshot(os.path.join(shots, "overview.png"))
    labels = [f.text.split("\n", 1)[1] for f in driver.find_elements(By.CSS_SELECTOR, "#figures .figure")]
    assert len(labels) == len(set(labels)), f"two figures share a label: {labels}"
    assert "accounts in all" in labels and "accounts with role user" in labels, labels
    assert visible_nav(driver) == ["Overview", "Users", "Create user", "Audit log", "Reports"]
    ok("the overview labels say what each number counts; an admin sees every screen")

    go(driver, "#/create")
    email = f"casey-{uuid.uuid4().hex[:8]}@example.com"
    wait(driver, EC.visibility_of_element_located((By.ID, "new-email"))).send_keys(email)
    driver.find_element(By.ID, "new-password").send_keys("short")
    driver.find_element(By.ID, "new-name").send_keys("Casey <b>Bold</b>")
    driver.find_element(By.CSS_SELECTOR, "#create button").click()
    assert text_of(driver, "#error-password"), "the password rule is shown next to its field"
    driver.find_element(By.ID, "new-password").clear()
    driver.find_element(By.ID, "new-password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#create button").click()
    wait(driver, EC.url_contains("#/user/"))
    wait_text(driver, "h1", email)
    user_id = int(driver.current_url.rsplit("/", 1)[1])
    # A name with markup is shown as text, not as HTML.
    assert "Casey <b>Bold</b>" in driver.find_element(By.TAG_NAME, "main").text
    assert not driver.find_elements(By.CSS_SELECTOR, "main b:not(.figure b)")
    ok("admin creates a user")

    Select(driver.find_element(By.ID, "user-role")).select_by_value("manager")
    driver.find_element(By.ID, "save-role").click()
    wait_text(driver, "#user-message", "Role set to manager")
    status, body = call("GET", f"/admin/users/{user_id}", admin())
    assert body["role"] == "manager", body
    assert sql(f"SELECT role FROM users WHERE id = {user_id}") == "manager"
    ok("admin promotes them to manager")

    casey_token = login(email)
    assert call("GET", "/users/me", casey_token)[0] == 200
    driver.find_element(By.ID, "revoke").click()
    wait_text(driver, "#user-message", "Every session revoked")
    assert call("GET", "/users/me", casey_token)[0] == 401
    assert sql(f"SELECT count(*) FROM sessions WHERE user_id = {user_id} AND revoked_at IS NULL") == "0"
    ok("admin revokes their sessions")

    driver.find_element(By.ID, "toggle-disabled").click()
    wait_text(driver, "#user-status", "disabled")
    assert call("GET", f"/admin/users/{user_id}", admin())[1]["disabled"] is True
    assert sql(f"SELECT disabled FROM users WHERE id = {user_id}") == "t"
    driver.save_screenshot(os.path.join(shots, "user.png"))
    ok("admin disables them")

    go(driver, "#/users")
    wait(driver, EC.visibility_of_element_located((By.ID, "q"))).send_keys(email)
    driver.find_element(By.CSS_SELECTOR, ".toolbar button").click()
    wait_text(driver, "#page-info", "(1 in all)")
    assert email in driver.find_element(By.TAG_NAME, "table").text
    go(driver, "#/overview")
    go(driver, "#/users")
    wait_text(driver, "#page-info", "in all")
    driver.save_screenshot(os.path.join(shots, "users.png"))
    ok("admin finds them in the users list")

    go(driver, "#/audit")
    # Waited for, not read once: the users screen's table is the one on the page
    # until the audit screen replaces it (reading it then was a stale element).
    for kind in ["user_created", "user_updated", "sessions_revoked"]:
        wait(driver, EC.text_to_be_present_in_element((By.TAG_NAME, "table"), kind))
    assert sql(f"SELECT count(*) FROM audit_events WHERE subject_id = {user_id} AND kind = 'user_updated'") == "2"
    driver.save_screenshot(os.path.join(shots, "audit.png"))
    ok("the audit log shows each change")

    # Access tokens live 3 s here: the console has refreshed them all along,
    # once each time (the audit log counts the refreshes).
    time.sleep(3.5)
    go(driver, "#/overview")
    wait(driver, EC.visibility_of_element_located((By.ID, "figures")))
    assert int(sql("SELECT count(*) FROM audit_events WHERE kind = 'token_refreshed'")) >= 1
    ok("an expired access token is refreshed transparently")

    # The last admin cannot demote themselves: the API's 409 as it words it.
    me = call("GET", "/users/me", admin())[1]
    go(driver, f"#/user/{me['id']}")
    wait_text(driver, "h1", admin_email)
    Select(driver.find_element(By.ID, "user-role")).select_by_value("user")
    driver.find_element(By.ID, "save-role").click()
    status, refusal = call("PATCH", f"/admin/users/{me['id']}", admin(), {"role": "user"})
    assert status == 409, (status, refusal)
    wait_text(driver, "#user-message", refusal["detail"])
    ok("the last-admin refusal is shown as the API words it")
    assert not console_errors(driver), console_errors(driver)

    # Every session of the admin revoked elsewhere: the refresh is refused and
    # the console goes back to signing in.
    assert call("POST", "/logout/all", admin())[0] == 204
    time.sleep(3.5)
    go(driver, "#/users")
    wait(driver, EC.visibility_of_element_located((By.ID, "signin")))
    wait_text(driver, "#signin-message", "sign in again")
    ok("a refused refresh returns to the sign-in screen")

    # --- a second factor ---
    guarded = new_user(admin(), "admin")
    secret = enable_mfa(guarded)
    sign_in(driver, guarded)
    wait(driver, EC.visibility_of_element_located((By.ID, "otp")))
    wait_text(driver, "#signin-message", "authenticator app")
    # The confirming code's step is used; the app's next one is accepted.
    driver.find_element(By.ID, "otp").send_keys(totp(secret, 30))
    driver.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait(driver, EC.visibility_of_element_located((By.ID, "figures")))
    assert sql("SELECT count(*) FROM audit_events WHERE kind = 'login_succeeded' "
               "AND detail->>'second_factor' = 'totp'") == "1"
    ok("an admin with a second factor signs in with a code")

    lost = new_user(admin(), "user")
    enable_mfa(lost)
    lost_id = int(sql(f"SELECT id FROM users WHERE email = '{lost}'"))
    go(driver, "#/users")
    wait_text(driver, "#page-info", "in all")
    assert "2FA" in driver.find_element(By.TAG_NAME, "table").text
    go(driver, f"#/user/{lost_id}")
    wait_text(driver, "#user-mfa", "on")
    driver.find_element(By.ID, "reset-mfa").click()
    wait_text(driver, "#user-message", "Second factor removed")
    wait_text(driver, "#user-mfa", "off")
    assert not driver.find_element(By.ID, "reset-mfa").is_displayed()
    assert sql(f"SELECT totp_enabled_at IS NULL FROM users WHERE id = {lost_id}") == "t"
    assert sql(f"SELECT count(*) FROM audit_events WHERE kind = 'mfa_reset' AND subject_id = {lost_id}") == "1"
    assert call("POST", "/token", form={"username": lost, "password": PASSWORD})[0] == 200
    ok("an admin resets a lost second factor")

    # --- getting someone back in: their sessions, a temporary password, a reset link ---
    acting_id = int(sql(f"SELECT id FROM users WHERE email = '{guarded}'"))  # signed in now
    stuck = new_user(admin(), "user")
    stuck_id = int(sql(f"SELECT id FROM users WHERE email = '{stuck}'"))
    older, newer = login(stuck), login(stuck)
    go(driver, f"#/user/{stuck_id}")
    wait_text(driver, "main", "Sessions (2 live)")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr:has(.end-session)")
    assert len(rows) == 2 and all("127.0.0.1" in r.text and "Python-urllib" in r.text for r in rows), \
        [r.text for r in rows]
    rows[0].find_element(By.CSS_SELECTOR, ".end-session").click()
    wait_text(driver, "#user-message", "Session ended")
    wait_text(driver, "main", "Sessions (1 live)")
    assert call("GET", "/users/me", older)[0] == 401, "the ended session's token still works"
    assert call("GET", "/users/me", newer)[0] == 200, "the other session was ended too"
    assert sql(f"SELECT count(*) FROM audit_events WHERE kind = 'session_revoked' "
               f"AND subject_id = {stuck_id} AND actor_id = {acting_id}") == "1"
    ok("an admin sees a user's sessions and ends one")

    driver.find_element(By.ID, "temp-password").send_keys("short")
    driver.find_element(By.ID, "save-password").click()
    wait_text(driver, "#user-message", "new_password")
    assert call("POST", "/token", form={"username": stuck, "password": PASSWORD})[0] == 200
    temporary = "temporary passphrase 31"
    driver.find_element(By.ID, "temp-password").clear()
    driver.find_element(By.ID, "temp-password").send_keys(temporary)
    driver.find_element(By.ID, "save-password").click()
    wait_text(driver, "#user-message", "Password set")
    assert call("GET", "/users/me", newer)[0] == 401, "a session outlived the new password"
    assert call("POST", "/token", form={"username": stuck, "password": PASSWORD})[0] == 401
    assert call("POST", "/token", form={"username": stuck, "password": temporary})[0] == 200
    assert sql(f"SELECT count(*) FROM audit_events WHERE kind = 'password_set' "
               f"AND subject_id = {stuck_id} AND actor_id = {acting_id}") == "1"
    ok("an admin sets a temporary password (the rules shown, old sessions ended)")

    driver.find_element(By.ID, "send-reset").click()
    wait_text(driver, "#user-message", "reset link is on its way")
    assert sql(f"SELECT count(*) FROM outbox WHERE recipient = '{stuck}'") == "1"
    assert sql(f"SELECT count(*) FROM audit_events WHERE kind = 'password_reset_requested' "
               f"AND subject_id = {stuck_id} AND actor_id = {acting_id}") == "1"
    driver.save_screenshot(os.path.join(shots, "user-recovery.png"))
    ok("an admin emails a reset link")

    # The audit log about that user: their email, the admin's, links, filters.
    driver.find_element(By.ID, "user-audit").click()
    wait(driver, EC.url_contains(f"#/audit/{stuck_id}"))
    wait_text(driver, "#page-info", "in all")
    rows = driver.find_elements(By.CSS_SELECTOR, "main tbody tr")
    assert rows and all(r.find_elements(By.CSS_SELECTOR, "td")[3].text == stuck for r in rows), \
        [r.text for r in rows]
    kinds = {r.find_elements(By.CSS_SELECTOR, "td")[1].text for r in rows}
    assert {"user_created", "session_revoked", "password_set", "password_reset_requested"} <= kinds, kinds
    offered = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#kind option")]
    doc = call("GET", "/openapi.json")[1]
    kind_filter = next(p for p in doc["paths"]["/admin/audit"]["get"]["parameters"] if p["name"] == "kind")
    assert offered == [""] + kind_filter["schema"]["enum"], offered
    Select(driver.find_element(By.ID, "kind")).select_by_value("password_set")
    driver.find_element(By.ID, "audit-actor-id").send_keys(str(acting_id))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    driver.execute_script("document.getElementById('audit-since').value = arguments[0];"
                          "document.getElementById('audit-until').value = arguments[0];", today)
    driver.find_element(By.CSS_SELECTOR, "#audit-filters button").click()
    wait_text(driver, "#page-info", "(1 in all)")
    row = driver.find_element(By.CSS_SELECTOR, "main tbody tr")
    assert guarded in row.text and stuck in row.text and "sessions_revoked: " in row.text, row.text
    driver.execute_script("document.getElementById('audit-since').value = '2000-01-01';"
                          "document.getElementById('audit-until').value = '2000-01-02';")
    driver.find_element(By.CSS_SELECTOR, "#audit-filters button").click()
    wait_text(driver, "#page-info", "(0 in all)")
    driver.save_screenshot(os.path.join(shots, "audit-filtered.png"))
    go(driver, "#/overview")
    go(driver, f"#/audit/{stuck_id}")
    wait_text(driver, "main tbody", stuck)
    driver.find_element(By.LINK_TEXT, stuck).click()
    wait(driver, EC.url_contains(f"#/user/{stuck_id}"))
    ok("the audit log filters by user, actor, kind and dates, names people by email and links to them")

    gone = new_user(admin(), "user")
    gone_id = int(sql(f"SELECT id FROM users WHERE email = '{gone}'"))
    assert call("DELETE", f"/admin/users/{gone_id}", admin())[0] == 204
    go(driver, f"#/audit/{gone_id}")
    wait_text(driver, "main tbody", f"#{gone_id} (deleted)")
    ok("a deleted user is shown as deleted, by id")
    assert not console_errors(driver), console_errors(driver)
    driver.find_element(By.ID, "signout").click()

    # --- a plain user and a manager ---
    plain = new_user(admin(), "user")
    sign_in(driver, plain)
    refusal = call("GET", "/reports", login(plain))[1]["detail"]
    wait_text(driver, "main", refusal)
    go(driver, "#/users")
    wait_text(driver, "main", "admin role required")
    ok("a plain user sees the refusal")
    driver.find_element(By.ID, "signout").click()

    manager = new_user(admin(), "manager")
    sign_in(driver, manager)
    wait(driver, EC.visibility_of_element_located((By.ID, "report-totals")))
    assert visible_nav(driver) == ["Reports"], visible_nav(driver)
    go(driver, "#/users")
    wait_text(driver, "main", "admin role required")
    ok("a manager sees reports but not users")
    driver.find_element(By.ID, "signout").click()

    # --- a disabled account ---
    sign_in(driver, email)
    wait_text(driver, "#signin-message", "Account disabled")
    ok("a disabled account is told so")

    # --- wrong passwords, then the lockout's wait ---
    victim = new_user(admin(), "user")
    sign_in(driver, victim, "not the password")
    wait_text(driver, "#signin-message", "Incorrect email or password")
    ok("a wrong password is shown")
    for _ in range(5):
        driver.find_element(By.ID, "password").clear()
        driver.find_element(By.ID, "password").send_keys("not the password")
        driver.find_element(By.CSS_SELECTOR, "#signin button").click()
        wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#signin button").is_enabled())
    wait_text(driver, "#signin-message", "try again in")
    ok("the lockout's wait is shown")
    assert not console_errors(driver), console_errors(driver)
    ok("no console errors")
finally:
    driver.quit()

# A phone's width: the users screen still works.
phone = browser(390, 844)
try:
    sign_in(phone, admin_email, admin_password)
    wait(phone, EC.visibility_of_element_located((By.ID, "figures")))
    go(phone, "#/users")
    wait_text(phone, "#page-info", "in all")
    assert phone.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    ok("the users screen fits a phone's width")
    go(phone, "#/audit")
    wait_text(phone, "#page-info", "in all")
    assert phone.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    label = phone.execute_script(
        "return getComputedStyle(document.querySelector('main tbody td:nth-child(2)'), '::before').content")
    assert "kind" in label, label
    phone.save_screenshot(os.path.join(shots, "audit-phone.png"))
    ok("the audit screen fits a phone's width, each value beside its label")
finally:
    phone.quit()

print(f"console: {passed} passed")
